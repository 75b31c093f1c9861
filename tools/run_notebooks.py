"""Run notebooks headless into runs/<notebook>/, showing progress: the main job of ./setup_venv.sh run.

  python -m tools.run_notebooks            every notebook, in order
  python -m tools.run_notebooks 02 05      a subset, by number
  python -m tools.run_notebooks 02 --set MAX_STEPS=2
                                           a knob of the settings cell changed for this run (a rehearsal: results.json
                                           records the value it ran with)

SMOKE_TEST=1 selects the smoke profile; SMOL_RUNS_DIR moves runs/. Before each notebook it prints the time the
committed reference run took on this kind of device (data/reference/); while it runs, each section heading, what the
notebook prints, and the training steps (with the Trainer's own estimate of the time left). From the first 30 s of
reference time on, each heading also says how long the rest should take here: the reference run's cell times for the
cells still to run, scaled by how long the finished cells took here against there. At the end a table of expected and
measured times. Ctrl-C stops after
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

from helpers import results, runtime
from tools import references
from tools.execute import Executor
from tools.save_reference import first_line

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
PROGRESS = re.compile(r"<progress value='(\d+)' max='(\d+)'")
HEADING = re.compile(r"^#{1,3} (.+)$", re.MULTILINE)
LEFT = re.compile(r"< (\d[\d:]*)")  # the time left in a Trainer's progress bar


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


def reference_folder(notebook: str, profile: str, device: str) -> Path:
    """data/reference/<notebook>/<profile>-<device>/: the committed reference run of this notebook on this device."""
    return references.reference_folder(notebook, profile, device)


def reference_cell_times(notebook: str, profile: str, device: str) -> list[dict[str, Any]]:
    """The committed reference run's cell times (its cell_times.json: each code cell's section, first line and
    seconds), or [] where none is committed."""
    times = reference_folder(notebook, profile, device) / "cell_times.json"
    return json.loads(times.read_text(encoding="utf-8")) if times.exists() else []


def expected_seconds(notebook: str, profile: str, device: str) -> float | None:
    """Seconds the committed reference run of this notebook took (data/reference/<notebook>/<profile>-<device>/):
    the sum of its cell times, else the whole-notebook time its results.json quotes; None where there is none."""
    cells = reference_cell_times(notebook, profile, device)
    if cells:
        return sum(cell["seconds"] for cell in cells)
    results = reference_folder(notebook, profile, device) / "results.json"
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


JUDGE_AFTER = 30.0  # reference seconds of finished cells before this machine's speed is judged


class WatchedClient(Executor):
    """The project's one executor (tools/execute.py), printing section headings, streamed text and training progress
    as they arrive, and at each section how long the rest should take here: the reference run's times for the cells
    still to run, scaled by how much longer (or shorter) the finished cells took on this machine than in that run."""

    def __init__(self, nb: Any, reference_cells: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(nb, **kwargs)
        self.started = time.monotonic()
        self.reference: dict[int, float] = self._match(nb, reference_cells or [])
        self.cell_started = 0.0
        self.took = {"here": 0.0, "reference": 0.0}  # finished cells with a reference time: seconds here and there
        self.on_cell_executed = self._cell_done
        self.last_step_print = 0.0
        self.last_progress: tuple[int, str, int, int] | None = None  # (cell, what, value, total) last printed
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

    @staticmethod
    def _match(nb: Any, reference_cells: list[dict[str, Any]]) -> dict[int, float]:
        """{index of a code cell: the reference run's seconds for it}, matched in order by the cell's first line."""
        waiting = [(cell["cell"], cell["seconds"]) for cell in reference_cells]
        found = {}
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            line = first_line(cell.source)
            hit = next((i for i, (other, _) in enumerate(waiting) if other == line), None)
            if hit is not None:
                found[index] = waiting.pop(hit)[1]
        return found

    def estimate(self, next_index: int) -> str:
        """'about 12:30 left (this machine has taken 1.4x the reference run's time so far)', or '' until the
        finished cells' reference time reaches JUDGE_AFTER seconds."""
        if self.took["reference"] < JUDGE_AFTER:
            return ""
        factor = self.took["here"] / self.took["reference"]
        left = factor * sum(s for index, s in self.reference.items() if index >= next_index)
        return f"about {clock(left)} left (this machine has taken {factor:.1f}x the reference run's time so far)"

    def _say(self, text: str) -> None:
        print(text, flush=True)

    def _cell_start(self, cell: Any, cell_index: int) -> None:
        self.cell_started = time.monotonic()
        if cell_index in self.section_of:
            left = self.estimate(cell_index)
            self._say(f"  [{clock(time.monotonic() - self.started)}] {self.section_of[cell_index]}"
                      + (f"  ... {left}" if left else ""))

    def _cell_done(self, cell: Any, cell_index: int, execute_reply: Any) -> None:
        if cell_index in self.reference:
            self.took["here"] += time.monotonic() - self.cell_started
            self.took["reference"] += self.reference[cell_index]

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
                progress = (cell_index, what, min(value, total), total)
                # The Trainer redraws a finished bar with every later log line: say each state once.
                if progress != self.last_progress and (value >= total or now - self.last_step_print > 20):
                    self.last_step_print, self.last_progress = now, progress
                    left = LEFT.search(html) if value < total else None  # "[20/100 00:41 < 02:45, ...]"
                    self._say(f"      {what} {min(value, total)}/{total}"
                              + (f" (the Trainer expects {left.group(1)} more)" if left else ""))
        return super().process_message(msg, cell, cell_index)


SETTINGS_END = "SETTINGS = results.settings_of(globals())"


def with_settings(nb: Any, assignments: list[str]) -> Any:
    """The notebook with `assignments` (NAME=VALUE, Python source) added at the end of its Settings cell, after the
    smoke profile's block and before SETTINGS records the knobs (results.json then holds the values it ran with)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and SETTINGS_END in c.source]
    if len(cells) != 1:
        raise SystemExit(f"expected one Settings cell holding {SETTINGS_END!r}, found {len(cells)}")
    lines = "".join(f"{a.split('=', 1)[0].strip()} = {a.split('=', 1)[1].strip()}\n" for a in assignments)
    cells[0].source = cells[0].source.replace(SETTINGS_END, lines + SETTINGS_END, 1)
    return nb


def run_one(path: Path, runs: Path, profile: str, device: str, assignments: list[str] | None = None
            ) -> tuple[str, float]:
    """Execute one notebook into runs/<name>/<name>.ipynb; returns (status, seconds)."""
    name = path.stem
    out = runs / name
    out.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    if assignments:
        with_settings(nb, assignments)
        print(f"  set for this run: {', '.join(assignments)}")
    # The kernel starts in the notebook's folder, as under jupyter nbconvert --execute.
    client = WatchedClient(nb, reference_cells=reference_cell_times(name, profile, device), timeout=None,
                           kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    status = "done"
    try:
        stopped = client.run()
    except KeyboardInterrupt:
        status = "interrupted"
    else:
        if stopped is not None:
            status = "FAILED"
            print(f"  {name} stopped at an error:\n{stopped['text'][-2000:]}", file=sys.stderr)
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
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a knob of the Settings cell changed for this run (e.g. MAX_STEPS=2); repeatable")
    args = parser.parse_args(argv)
    bad = [k for k in args.set if "=" not in k]
    if bad:
        parser.error(f"--set takes NAME=VALUE, not {bad[0]!r}")
    chosen = choose(args.notebooks)
    profile = runtime.profile()  # SMOKE_TEST read as the notebooks read it
    gpu = runtime.has_gpu()
    device = "gpu" if gpu else "cpu"
    runs = results.runs_root().resolve()
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
            done[path.stem] = run_one(path, runs, profile, device, args.set)
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
