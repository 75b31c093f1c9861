"""A notebook executed cell by cell in a new kernel of the simulated Colab's python, and what to read from the
executed notebook: the first error, each tagged cell's seconds. The hub-outage check and the T4 harness use it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

# Executes a notebook cell by cell in a new kernel of the python that runs it (nbclient: in Colab's image and a
# dependency of nbval), stopping at the first cell that fails; writes the executed notebook, each code cell's seconds
# in its metadata (colab_sim_seconds) and where it stopped in the notebook's (colab_sim). Given on stdin:
# python - SOURCE TARGET TIMEOUT_S
EXECUTE = """\
import sys
import time

import nbformat
from nbclient import NotebookClient

source, target, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Echo(NotebookClient):
    def process_message(self, msg, cell, cell_index):  # what the cells print, as they print it
        if msg.get("msg_type") == "stream":
            print(msg["content"]["text"], end="", flush=True)
        return super().process_message(msg, cell, cell_index)


nb = nbformat.read(source, as_version=4)
client = Echo(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}})
stopped, start = None, time.perf_counter()
try:
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            began = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except Exception as error:  # the cell raised (CellExecutionError), the kernel died, a time-out
                stopped = {"cell": index, "exception": type(error).__name__, "text": str(error)[-3000:]}
            cell.metadata["colab_sim_seconds"] = round(time.perf_counter() - began, 2)
            if stopped:
                break
finally:
    nb.metadata["colab_sim"] = {"seconds": round(time.perf_counter() - start, 1), "stopped": stopped}
    nbformat.write(nb, target)
"""


def execute(python: Path, notebook: Path, env: dict[str, str], timeout: int = 900) -> dict:
    """Run EXECUTE on `notebook` in its folder with the sim's python; returns the executed notebook (JSON)."""
    target = notebook.with_name(notebook.stem + ".executed.ipynb")
    subprocess.run(
        [str(python), "-", notebook.name, target.name, str(timeout)],
        input=EXECUTE,
        cwd=notebook.parent,
        env=env,
        text=True,
        check=True,
    )
    return json.loads(target.read_text(encoding="utf-8"))


def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def first_error(nb: dict) -> tuple[int, dict] | None:
    """(cell index, its error output) of the first code cell with an error output, or None."""
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if output.get("output_type") == "error":
                return index, output
    return None


def cell_seconds(nb: dict) -> dict[str, float]:
    """{tag: seconds} of an executed notebook's tagged code cells (see EXECUTE)."""
    return {
        tag: cell.get("metadata", {}).get("colab_sim_seconds")
        for cell in nb["cells"]
        for tag in cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code"
    }
