"""The command line of the simulated Colab (tools/colab_sim/__init__.py says what it does):

  python -m tools.colab_sim [02 05 ... | all]      (./setup_venv.sh colab-sim [...] calls this; default: 02)
  python -m tools.colab_sim t4 [01 02 ... | all]   tests/colab_t4.ipynb in the simulated Colab (default: all six)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from helpers.colab import HELD
from tools.colab_sim.notebooks import bundle_kb, run_notebook
from tools.colab_sim.outage import install_offline_copy
from tools.colab_sim.pins import resolve_for_colab
from tools.colab_sim.report import REPORT, save_report
from tools.colab_sim.sources import ROOT
from tools.colab_sim.t4_sim import run_t4
from tools.colab_sim.venv import FREEZE, VENV, build_venv, colab_freeze, installed, log
from tools.readme_results import write_measurements


class LoadSampler:
    """The machine's 1-minute load average, read every 30 s in a background thread; average() is their mean."""

    def __init__(self, every: float = 30.0) -> None:
        import threading

        self.samples: list[float] = []
        self.done = threading.Event()
        self.every = every
        threading.Thread(target=self.sample, daemon=True).start()

    def sample(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def average(self) -> float | None:
        self.done.set()
        return round(sum(self.samples) / len(self.samples), 2) if self.samples else None


def notebook_numbers() -> list[str]:
    return [p.name[:2] for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def parse_args(argv: list[str], numbers: list[str] | None = None) -> tuple[str, list[str]]:
    """('notebooks', numbers) for `[02 05 ... | all]` (default 02), ('t4', numbers) for `t4 [01 02 ... | all]`
    (default all)."""
    numbers = notebook_numbers() if numbers is None else numbers
    mode = "t4" if argv[:1] == ["t4"] else "notebooks"
    args = list(argv[1:] if mode == "t4" else argv)
    if not args:
        args = list(numbers) if mode == "t4" else ["02"]
    if args == ["all"]:
        args = list(numbers)
    unknown = [a for a in args if a not in numbers]
    if unknown or len(set(args)) != len(args):
        raise SystemExit(f"unknown or repeated notebook numbers in {args}: use {' '.join(numbers)} or all")
    return mode, sorted(args)


def select(numbers: list[str]) -> list[Path]:
    return [nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if nb.name[:2] in numbers]


def main(argv: list[str]) -> int:
    mode, numbers = parse_args(argv)
    freeze = colab_freeze()
    part: dict[str, object] = {
        "command": " ".join(["./setup_venv.sh colab-sim", *(["t4"] if mode == "t4" else []), *numbers]),
        "freeze": str(FREEZE.relative_to(ROOT)),
        "python": sys.version.split()[0],
    }
    start = time.perf_counter()
    load = LoadSampler()  # other work on this machine makes the runs slower: say how busy it was
    if mode == "notebooks":
        chosen = select(numbers)
        log("resolving every notebook's install cell for Python 3.13 with Colab's torch held ...")
        resolved = {
            nb.name: resolve_for_colab(nb, freeze) for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        }
        part["resolved_py313"] = next(iter(resolved.values()))
        log(f"all {len(resolved)} install cells resolve for Python 3.13 without moving {', '.join(HELD)}")
    log(f"building {VENV.name} with Colab's versions (CPU torch stand-in) ...")
    build_start = time.perf_counter()
    python = build_venv(freeze)
    part["venv_build_seconds"] = round(time.perf_counter() - build_start, 1)
    part["seed"] = {n: v for n, v in installed(python).items() if n in HELD}
    if mode == "notebooks":
        part["runs"] = {}
        for notebook in chosen:
            part["runs"][notebook.name] = run_notebook(python, notebook)  # type: ignore[index]
            # the next notebook starts from Colab's image again
            if notebook is not chosen[-1]:
                python = build_venv(freeze)
        part["bundle_kb"] = {nb.name: bundle_kb(nb) for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    else:
        part["offline_pin"] = install_offline_copy(python)
        part["t4"] = run_t4(python, numbers)
    part["seconds"] = round(time.perf_counter() - start, 1)
    part["date"] = time.strftime("%Y-%m-%d")
    part["load"] = {"average": load.average(), "cores": os.cpu_count()}
    save_report(mode, part)
    write_measurements()  # the one writer of docs/MEASUREMENTS.md: its colab-sim block from the report just saved
    log(
        f"passed: {len(numbers)} notebook(s) in {part['seconds']:.0f} s; "
        f"report in {REPORT.relative_to(ROOT)}; docs/MEASUREMENTS.md updated"
    )
    return 0
