"""One way to execute a notebook: nbclient's executor in a new kernel, every code cell in order, stopping at the first
cell that fails, and where it stopped written into the notebook's metadata ("execute": its seconds and the failing
cell, or null). Each code cell's wall time is nbclient's own record (cell_seconds reads it). The main job
(tools/run_notebooks.py, which adds progress on top), the simulated Colab and the GPU check run notebooks through it.

A Python without this repository on its path (the simulated Colab's) runs this file itself; it imports only the
standard library, nbformat and nbclient:

  python tools/execute.py SOURCE TARGET TIMEOUT_S [--echo]     (--echo: print what the cells print, as they print it)
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from typing import Any

import nbformat
import zmq
from nbclient import NotebookClient

RUN_KEY = "execute"  # the notebook metadata key: {"seconds": ..., "stopped": None or {"cell", "exception", "text"}}
STAMPS = ("iopub.execute_input", "shell.execute_reply")  # nbclient's timing record: the cell started, then ended


class Executor(NotebookClient):
    """nbclient's NotebookClient, recording where a run stopped: run() executes the notebook and returns None, or
    {"cell": index, "exception": name, "text": the error's last 3,000 characters} for the cell (or, with "cell" None,
    the kernel) that failed."""

    stopped: dict[str, Any] | None = None

    def create_kernel_manager(self) -> Any:
        """nbclient's kernel manager, asked for CurveZMQ keys where pyzmq and the kernel support them: ipykernel 7.3+
        warns at every start that a kernel talking over TCP in plain text can be overheard."""
        km = super().create_kernel_manager()
        if "transport_encryption" in km.trait_names() and zmq.has("curve"):
            km.transport_encryption = "auto"  # encrypts when the kernel spec declares support; else as before
        return km

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        except Exception as error:  # CellExecutionError, a dead kernel, a time-out: the run stops at this cell
            self.stopped = {"cell": cell_index, "exception": type(error).__name__, "text": str(error)[-3000:]}
            raise

    def run(self) -> dict[str, Any] | None:
        """Execute every code cell (KeyboardInterrupt propagates); returns where it stopped, or None."""
        self.stopped, start = None, time.perf_counter()
        try:
            self.execute()
        except Exception as error:  # noqa: BLE001  (the kernel would not start, or died between cells)
            if self.stopped is None:
                self.stopped = {"cell": None, "exception": type(error).__name__, "text": str(error)[-3000:]}
        finally:
            self.nb.metadata[RUN_KEY] = {"seconds": round(time.perf_counter() - start, 1), "stopped": self.stopped}
        return self.stopped


class Echo(Executor):
    """An Executor that prints what the cells print (stdout and stderr streams), as they print it."""

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        if msg.get("msg_type") == "stream":
            print(msg["content"]["text"], end="", flush=True)
        return super().process_message(msg, cell, cell_index)


def cell_seconds(cell: dict[str, Any]) -> float | None:
    """A code cell's wall seconds from nbclient's timing record in its metadata, or None if it never ran."""
    stamps = cell.get("metadata", {}).get("execution", {})
    if not all(key in stamps for key in STAMPS):
        return None
    start, end = (datetime.fromisoformat(stamps[key].replace("Z", "+00:00")) for key in STAMPS)
    return (end - start).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("target")
    parser.add_argument("timeout", type=int, help="seconds one cell may take")
    parser.add_argument("--echo", action="store_true")
    args = parser.parse_args(argv)
    nb = nbformat.read(args.source, as_version=4)
    client = (Echo if args.echo else Executor)(nb, timeout=args.timeout, kernel_name="python3",
                                               resources={"metadata": {"path": "."}})
    try:
        client.run()
    finally:
        nbformat.write(nb, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
