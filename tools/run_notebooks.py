"""Run notebooks headless into runs/<notebook>/, showing progress: the main job of ./setup_venv.sh run.

  python tools/run_notebooks.py            every notebook, in order
  python tools/run_notebooks.py 02 05      a subset, by number

SMOKE_TEST=1 selects the smoke profile; SMOL_RUNS_DIR moves runs/. Before each notebook it prints the time the
committed reference run took on this kind of device (data/reference/); while it runs, each section heading, what the
notebook prints, and the training steps; at the end a table of expected and measured times. Ctrl-C stops after
shutting the kernel down: notebooks that finished keep their results, the interrupted one is saved as
<notebook>.partial.ipynb. The executed notebooks carry nbclient's cell timings, which tools/save_reference.py reads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers import runtime

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROGRESS = re.compile(r"<progress value='(\d+)' max='(\d+)'")
HEADING = re.compile(r"^#{1,3} (.+)$", re.MULTILINE)


def choose(numbers: list[str]) -> list[Path]:
    """The notebooks named by their numbers ("02", "2" or "02_lora_finetuning"); all of them when none is named."""
    if not numbers:
        return NOTEBOOKS
    chosen = []
    for number in numbers:
        found = [p for p in NOTEBOOKS if p.stem.startswith(number.zfill(2)) or p.stem == number]
        if len(found) != 1:
            names = ", ".join(p.stem[:2] for p in NOTEBOOKS)
            raise SystemExit(f"run: no single notebook matches {number!r}; choose from {names}")
        chosen += found
    return chosen


def expected_seconds(notebook: str, profile: str, device: str) -> float | None:
    """Seconds the committed reference run of this notebook took (data/reference/<notebook>/<profile>-<device>/):
    the sum of its cell times, else the whole-notebook time its results.json quotes; None where there is none."""
    folder = ROOT / "data" / "reference" / notebook / f"{profile}-{device}"
    times = folder / "cell_times.json"
    if times.exists():
        return sum(cell["seconds"] for cell in json.loads(times.read_text(encoding="utf-8")))
    results = folder / "results.json"
    if results.exists():
        measured = str(json.loads(results.read_text(encoding="utf-8")).get("measured", ""))
        found = re.search(r"(\d+) s (?:of code cells|for the whole notebook)", measured)
        if found:
            return float(found.group(1))
    return None


def clock(seconds: float | None) -> str:
    """12:05 for 725 s; '?' when unknown."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


class WatchedClient(NotebookClient):
    """nbclient's executor, printing section headings, streamed text and training progress as they arrive."""

    def __init__(self, nb: Any, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.started = time.monotonic()
        self.last_step_print = 0.0
        self.section_of = self._sections(nb)
        self.on_cell_start = self._cell_start

    @staticmethod
    def _sections(nb: Any) -> dict[int, str]:
        """{index of a section's first code cell: the section's heading}."""
        found, heading = {}, None
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "markdown":
                headings = HEADING.findall(cell.source)
                heading = headings[0] if headings else heading
            elif cell.cell_type == "code" and heading is not None:
                found[index], heading = heading, None
        return found

    def _say(self, text: str) -> None:
        print(text, flush=True)

    def _cell_start(self, cell: Any, cell_index: int) -> None:
        if cell_index in self.section_of:
            self._say(f"  [{clock(time.monotonic() - self.started)}] {self.section_of[cell_index]}")

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream" and content.get("name") == "stdout":
            for line in content["text"].rstrip("\n").split("\n"):
                self._say(f"      {line.split(chr(13))[-1]}")
        elif kind in ("display_data", "update_display_data"):
            html = str(content.get("data", {}).get("text/html", ""))
            found = PROGRESS.search(html)
            now = time.monotonic()
            if found:
                # The Trainer's training bar says "Epoch x/y"; a bar without it counts evaluation batches (and can
                # overshoot its total by one, so it is capped).
                value, total = int(found.group(1)), int(found.group(2))
                what = "training: step" if "Epoch" in html else "evaluating: batch"
                if value >= total or now - self.last_step_print > 20:
                    self.last_step_print = now
                    self._say(f"      {what} {min(value, total)}/{total}")
        return super().process_message(msg, cell, cell_index)


def run_one(path: Path, runs: Path, profile: str, device: str) -> tuple[str, float]:
    """Execute one notebook into runs/<name>/<name>.ipynb; returns (status, seconds)."""
    name = path.stem
    out = runs / name
    out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    # The kernel starts in the notebook's folder, as under jupyter nbconvert --execute.
    client = WatchedClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    status = "done"
    try:
        client.execute()
    except CellExecutionError as error:
        status = "FAILED"
        print(f"  {name} stopped at an error:\n{str(error)[-2000:]}", file=sys.stderr)
    except KeyboardInterrupt:
        status = "interrupted"
    seconds = time.monotonic() - start
    target = out / (f"{name}.ipynb" if status == "done" else f"{name}.partial.ipynb")
    nbformat.write(nb, target)
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    print(f"  {name}: {status} in {clock(seconds)} -> {shown}")
    if status == "interrupted":
        raise KeyboardInterrupt
    return status, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", help="numbers of the notebooks to run (default: all)")
    args = parser.parse_args(argv)
    chosen = choose(args.notebooks)
    profile = "smoke" if os.environ.get("SMOKE_TEST", "0") == "1" else "full"
    gpu = runtime.has_gpu()
    device = "gpu" if gpu else "cpu"
    runs = Path(os.environ.get("SMOL_RUNS_DIR", ROOT / "runs")).resolve()
    os.environ["SMOL_RUNS_DIR"] = str(runs)  # absolute, for kernels that start in notebooks/
    expected = {p.stem: expected_seconds(p.stem, profile, device) for p in chosen}
    known = [s for s in expected.values() if s is not None]
    total = clock(sum(known)) + ("" if len(known) == len(expected) else " + the notebooks without a reference time")
    print(f"Running {len(chosen)} notebook(s), {profile} profile, on {'a GPU' if gpu else 'the CPU'}, into {runs}")
    print(f"Expected (reference runs on a {device.upper()} in data/reference/): {total}")
    if not gpu and profile == "full":
        print(
            "No GPU here: the full profile trains for real on the CPU, which takes that long. For a check that\n"
            "everything runs (a few steps each, minutes in all), stop with Ctrl-C and run:\n"
            "  SMOKE_TEST=1 ./setup_venv.sh run"
        )
    done: dict[str, tuple[str, float]] = {}
    try:
        for path in chosen:
            print(f"\n== {path.stem} ({profile} profile; expected {clock(expected[path.stem])})", flush=True)
            done[path.stem] = run_one(path, runs, profile, device)
    except KeyboardInterrupt:
        print("\nStopped (Ctrl-C). The notebooks that finished keep their results in", runs)
    print("\n| notebook | expected | measured | status |\n|---|---|---|---|")
    for path in chosen:
        status, seconds = done.get(path.stem, ("not run", None))
        print(f"| {path.stem} | {clock(expected[path.stem])} | {clock(seconds)} | {status} |")
    finished = [s for s, _ in done.values()]
    if len(finished) < len(chosen):
        return 130
    return 0 if all(s == "done" for s in finished) else 1


if __name__ == "__main__":
    sys.exit(main())
