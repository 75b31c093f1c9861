"""gpu-check's runner: a plan's steps run in order while they fit before a deadline, each step's commands side by side
in their own process groups and stopped at the deadline; for --dry-run, each command checked before it would start
(a missing tool, arguments its parser refuses) and the deadline simulated.

Its one job is running steps, whatever they are: tools.gpu_check makes the plan (which steps, their commands, expected
times and deadlines) and tools.gpu_report writes what came of them.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

# Run by the GPU machine's own Python (no venv) as part of `python -m tools.gpu_check`: the standard library and
# tools.carry only (the carried parts check_command looks at, the log line); never tools.gpu_check (which imports it).
from tools.carry import CARRY, PART, assemble, log

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Step:
    name: str
    title: str
    commands: list[list[str]]  # run side by side; the step passes when all pass
    env: dict[str, str] = field(default_factory=dict)
    expected: float = 0.0
    source: str = ""
    references: list[tuple[str, str]] = field(default_factory=list)  # (notebook, device label) saved after it
    required: bool = False  # a failure stops the plan (the install)


@dataclass
class Outcome:
    name: str
    status: str  # passed | failed | skipped | stopped at the deadline | dry run
    seconds: float = 0.0
    expected: float = 0.0
    detail: str = ""


Runner = Callable[[Step, float], tuple[str, float, str]]  # (step, seconds left) -> (status, seconds, detail)


def run_commands(step: Step, left: float, logs: Path) -> tuple[str, float, str]:
    """Run a step's commands side by side, each in its own process group, stopped when `left` seconds are over."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **step.env}
    start = time.monotonic()
    procs = []
    for i, command in enumerate(step.commands):
        out = open(logs / f"{step.name}{'-' + str(i) if len(step.commands) > 1 else ''}.log", "w", encoding="utf-8")
        procs.append((subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True), out))
    stopped = False
    while any(p.poll() is None for p, _ in procs):
        if time.monotonic() - start > left:
            stopped = True
            for p, _ in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGTERM)
            time.sleep(5)
            for p, _ in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
            break
        time.sleep(1)
    for p, out in procs:
        p.wait()
        out.close()
    seconds = time.monotonic() - start
    codes = [p.returncode for p, _ in procs]
    if stopped:
        return "stopped at the deadline", seconds, f"exit codes {codes}"
    return ("passed" if all(c == 0 for c in codes) else "failed"), seconds, f"exit codes {codes}"


def walk(steps: list[Step], deadline_seconds: float, runner: Runner, clock: Callable[[], float]) -> list[Outcome]:
    """Run the steps in order while they fit: a step starts only if its expected time fits in what is left; a
    required step that fails stops the rest."""
    start = clock()
    outcomes: list[Outcome] = []
    blocked = ""
    for s in steps:
        left = deadline_seconds - (clock() - start)
        if blocked:
            outcomes.append(Outcome(s.name, "skipped", 0, s.expected, blocked))
            continue
        if s.expected > left:
            why = f"expected {s.expected:.0f} s, {left:.0f} s left"
            outcomes.append(Outcome(s.name, "skipped", 0, s.expected, why))
            continue
        log(f"{s.name}: {s.title} (expected {s.expected:.0f} s, {left:.0f} s left)")
        status, seconds, detail = runner(s, left)
        log(f"{s.name}: {status} in {seconds:.0f} s")
        outcomes.append(Outcome(s.name, status, round(seconds, 1), s.expected, detail))
        if s.required and status not in ("passed", "dry run"):
            blocked = f"{s.name} did not pass"
    return outcomes


def dry_runner(now: list[float]) -> Runner:
    """A runner for --dry-run: checks the step's commands, advances a simulated clock by the expected time."""

    def run(step: Step, left: float) -> tuple[str, float, str]:
        problems = [p for command in step.commands for p in check_command(command)]
        seconds = min(step.expected, left)
        now[0] += seconds
        if problems:
            return "failed", seconds, "; ".join(problems)
        if step.expected > left:
            return "stopped at the deadline", seconds, "simulated"
        return "dry run", seconds, "commands checked; not run"

    return run


def check_command(command: list[str]) -> list[str]:
    """What would make a command fail before it starts: a missing tool, arguments its parser refuses. A command runs a
    tool as a module from the repository root: [python, "-m", "tools.bench", ARGS...]."""
    if len(command) < 3 or command[1] != "-m" or not re.fullmatch(r"tools\.\w+", command[2]):
        return [f"not a `python -m tools.<name>` call: {command}"]
    script = ROOT / (command[2].replace(".", "/") + ".py")
    if not script.exists():
        return [f"{command[2]} does not exist ({script.relative_to(ROOT).as_posix()})"]
    if command[2] == "tools.gpu_check":
        if command[3:] != ["install"]:
            return [f"unknown gpu_check call {command[3:]}"]
        try:  # the carried parts, when this machine has them: complete, and each wheel whole again
            with tempfile.TemporaryDirectory() as tmp:
                assemble(Path(tmp))
        except SystemExit as error:
            return [] if not list(CARRY.glob(f"{PART}*")) else [str(error)]
        return []
    probe = subprocess.run([sys.executable, "-c", PROBE, *command[2:]], cwd=ROOT, capture_output=True, text=True)
    if probe.returncode != 0 or "arguments parsed" not in probe.stdout:
        return [f"{' '.join(command[1:])}: exit {probe.returncode}: {probe.stderr.strip()[-300:]}"]
    return []


# Runs a tool's module as __main__ (as `python -m tools.x` does; `python -c` from the repository root has the root on
# sys.path) until its argparse parser has read the command line, then stops: a refused argument exits 2 (parse_args),
# accepted ones exit 0 before the tool does anything. argv: the module's name, then its arguments.
PROBE = """
import argparse, runpy, sys
real_args, real_known = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
inside = []
def parse_args(self, args=None, namespace=None):
    inside.append(1)
    real_args(self, args, namespace)
    print("arguments parsed"); sys.exit(0)
def parse_known_args(self, args=None, namespace=None):
    result = real_known(self, args, namespace)
    if not inside:
        print("arguments parsed"); sys.exit(0)
    return result
argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = parse_args, parse_known_args
module, sys.argv = sys.argv[1], sys.argv[1:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

