"""The test suite of ./setup_venv.sh test and test-plain (and their setup_venv.ps1 twins), in the smoke profile.

  python -m tools.run_tests                  ruff, the unit tests, every notebook under nbval, the results checks
  python -m tools.run_tests ARGS...          only pytest ARGS (e.g. tests/unit/test_data.py -k bom)
  python -m tools.run_tests --plain [02 05]  the plain engine (SMOL_ENGINE=plain): those notebooks and their checks
  python -m tools.run_tests --notebooks-only [01 ...]   only the notebooks under nbval (tools.gpu_check on a GPU)

Each notebook runs from a folder that holds only a copy of it, as after an upload to Colab, in a pytest session of its
own. Two notebooks run at a time on a machine with two or more cores, each kernel with half the cores as torch threads
(SMOL_TEST_WORKERS sets how many at a time). Measured on this project's 2-core machine (2026-12-02, the six smoke
notebooks): one after the other with two threads, 15.4 min; two at a time with one thread each, 20.4 min for two
such suites (1.5 times the work per minute), since much of a smoke run is generation and Python that a second thread
hardly speeds up. Two kernels with two threads each on two cores fight over them: many times slower.
The results checks run last, in a session told when the suite started (SMOL_TESTS_STARTED), so that results.json
files from an earlier run are refused. Runs go to runs/smoke-tests/ (runs/smoke-tests-plain/), or $SMOL_RUNS_DIR.
At the end: seconds per step and one closing line with the counts of all sessions.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tools.run_notebooks import choose, expected_seconds  # the same notebook numbers as ./setup_venv.sh run

ROOT = Path(__file__).resolve().parents[1]

COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped)")
PRINT_LOCK = threading.Lock()


def smoke_seconds(name: str) -> float:
    """The committed smoke reference's time on a CPU (run_notebooks.expected_seconds), 0 where none: the longest
    notebooks start first, so that two at a time finish together."""
    return expected_seconds(name, "smoke", "cpu") or 0.0


def workers_and_threads(cores: int | None = None, env: dict[str, str] | None = None) -> tuple[int, int]:
    """How many notebooks run at a time and how many torch threads each kernel gets."""
    cores = cores or os.cpu_count() or 1
    wanted = (os.environ if env is None else env).get("SMOL_TEST_WORKERS", "").strip()
    workers = int(wanted) if wanted else min(2, cores)
    if workers < 1:
        raise SystemExit(f"SMOL_TEST_WORKERS={wanted}: use 1 or more")
    return workers, max(1, cores // workers)


def counts(output: str) -> dict[str, int]:
    """The counts in pytest's closing line ("3 passed, 1 failed in 2.0s"): {"passed": 3, "failed": 1}."""
    lines = [line for line in output.splitlines() if COUNTS.search(line) and " in " in line]
    found: dict[str, int] = {}
    for number, kind in COUNTS.findall(lines[-1] if lines else ""):
        kind = "errors" if kind.startswith("error") else kind
        found[kind] = found.get(kind, 0) + int(number)
    return found


class Suite:
    """Runs pytest sessions, prints each one's output whole, keeps their counts and times."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.steps: list[tuple[str, float, int]] = []
        self.totals: dict[str, int] = {}

    def pytest(self, label: str, args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> int:
        start = time.monotonic()
        # The configuration named outright: pytest looks for pytest.ini only at and above the paths it is given, and a
        # notebook copied outside the repository (gpu_check's runs folder) would lose --nbval-lax and not be collected.
        config = ["-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT)]
        result = subprocess.run([sys.executable, "-m", "pytest", *config, *args], cwd=ROOT,
                                env={**self.env, **(env or {})},
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        seconds = time.monotonic() - start
        if log is not None:
            log.write_text(result.stdout, encoding="utf-8")
        with PRINT_LOCK:
            print(f"\n===== {label}: exit {result.returncode} in {seconds:.0f} s", flush=True)
            print(result.stdout, end="", flush=True)
            found = counts(result.stdout)
            if result.returncode not in (0, 5) and not found.get("failed") and not found.get("errors"):
                found["errors"] = 1  # pytest stopped before counting (a collection or usage error)
            for kind, number in found.items():
                self.totals[kind] = self.totals.get(kind, 0) + number
            self.steps.append((label, seconds, result.returncode))
        return result.returncode

    def in_parallel(self, chosen: list[Path], runs: Path, workers: int, threads: int, unit: bool) -> None:
        """Each notebook under nbval from a folder holding only its copy (and the unit tests, when `unit`), `workers`
        sessions at a time, the longest first."""
        alone = runs / "notebooks-alone"
        shutil.rmtree(alone, ignore_errors=True)
        alone.mkdir(parents=True)
        order = sorted(chosen, key=lambda p: -smoke_seconds(p.stem))
        jobs = [(p.stem, [str(alone / p.name)], alone / f"{p.stem}.log") for p in order]
        if unit:
            jobs.append(("unit tests", ["tests/unit"], None))
        for path in order:
            shutil.copy(path, alone / path.name)
        print(f"{len(jobs)} pytest sessions, {workers} at a time, {threads} torch thread(s) each: "
              f"{', '.join(label for label, _, _ in jobs)}", flush=True)
        env = {"OMP_NUM_THREADS": str(threads)}
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda job: self.pytest(job[0], job[1], env, job[2]), jobs))

    def report(self, started: float) -> int:
        print("\n===== seconds per step (notebooks ran side by side: their sum is more than the wall time)")
        for label, seconds, code in self.steps:
            print(f"{seconds:8.1f}  {label}{'' if code in (0, 5) else f'  (exit {code})'}")
        print(f"{time.monotonic() - started:8.1f}  wall time in all")
        failed = self.totals.get("failed", 0) + self.totals.get("errors", 0)
        line = f"{self.totals.get('passed', 0)} passed, {failed} failed"
        print(line + (f", {self.totals['skipped']} skipped" if self.totals.get("skipped") else ""))
        return 1 if failed or any(code not in (0, 5) for _, _, code in self.steps) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", action="store_true", help="the plain engine: the notebooks named (default 02 05)")
    parser.add_argument("--notebooks-only", action="store_true",
                        help="only the notebooks named (default all) under nbval: no ruff, unit tests or results "
                        "checks (tools.gpu_check on a GPU machine)")
    args, rest = parser.parse_known_args(argv)
    default = "smoke-tests-plain" if args.plain else "smoke-tests"
    runs = Path(os.environ.get("SMOL_RUNS_DIR") or ROOT / "runs" / default).resolve()
    env = {**os.environ, "SMOKE_TEST": "1", "SMOL_RUNS_DIR": str(runs)}
    if args.plain:
        env["SMOL_ENGINE"] = "plain"
    suite = Suite(env)
    if rest and not (args.plain or args.notebooks_only):  # just pytest, as asked
        return subprocess.call([sys.executable, "-m", "pytest", *rest], cwd=ROOT, env=env)
    started = time.monotonic()
    env["SMOL_TESTS_STARTED"] = str(time.time())
    chosen = choose(rest or (["02", "05"] if args.plain else []))
    if args.notebooks_only:
        suite.in_parallel(chosen, runs, *workers_and_threads(), unit=False)
        return suite.report(started)
    if not args.plain:
        # Lint first (seconds): pyflakes, isort and lines of at most 120 characters.
        if subprocess.call([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT) != 0:
            print("ruff found the problems above: fix them (ruff check --fix . fixes some)", file=sys.stderr)
            return 1
    suite.in_parallel(chosen, runs, *workers_and_threads(), unit=not args.plain)
    suite.pytest("results checks", ["tests/results"], {"SMOL_CHECK_NOTEBOOKS": " ".join(p.stem for p in chosen)})
    return suite.report(started)


if __name__ == "__main__":
    sys.exit(main())
