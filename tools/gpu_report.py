"""What gpu-check leaves behind in OUT: summary.md and summary.json (the plan, each step's outcome and time, the commit
command), log.txt (everything printed, through Tee), pip-freeze.txt (the machine's packages) and gpu-check.tar.gz (the
new data/reference/ files, the step logs and the executed notebooks); the references a passed step saves
(tools.save_reference) and the measured step times (data/reference/gpu-check/timings.json, which the plan reads).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import asdict
from pathlib import Path

# Run by the GPU machine's own Python (no venv) as part of `python -m tools.gpu_check`: the standard library,
# tools.carry (the work folder) and tools.gpu_steps (a step, its outcome) only; never tools.gpu_check (it imports this).
from tools.carry import WORK
from tools.gpu_steps import Outcome, Step

ROOT = Path(__file__).resolve().parents[1]

TIMINGS = ROOT / "data" / "reference" / "gpu-check" / "timings.json"  # written here, read by the plan


def commit_command(files_at: str = "<files_at of the device call>") -> str:
    return (f"tar -xzf {files_at}/gpu-check.tar.gz -C . data/reference && venv/bin/python -m tools.sync_notebooks && "
            "venv/bin/python -m tools.readme_results && git add data/reference docs/MEASUREMENTS.md notebooks && "
            "git commit -m 'GPU check: references measured by ./setup_venv.sh gpu-check'")


def new_references(since: float) -> list[Path]:
    """data/reference files written since `since` (the references this run saved), relative to the repository."""
    base = ROOT / "data" / "reference"
    return sorted(p.relative_to(ROOT) for p in base.rglob("*") if p.is_file() and p.stat().st_mtime >= since)


def write_out(out: Path, steps: list[Step], outcomes: list[Outcome], deadlines: dict[str, float], machine: dict,
              logs: Path, since: float, dry_run: bool, record_times: bool = True) -> None:
    out.mkdir(parents=True, exist_ok=True)
    summary = {"date": time.strftime("%Y-%m-%d"), "machine": machine, "deadline_seconds": deadlines,
               "dry_run": dry_run,
               "plan": [{k: v for k, v in asdict(s).items() if k != "env"} for s in steps],
               "outcomes": [asdict(o) for o in outcomes], "commit": commit_command()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    lines = [f"# gpu-check {summary['date']}{' (dry run)' if dry_run else ''}", "",
             f"Machine: {machine.get('gpu', '?')}; {machine.get('python', '?')}; torch {machine.get('torch', '?')}; "
             "deadline " + ", ".join(f"phase {p}: {d:.0f} s" for p, d in deadlines.items()), "",
             "| step | status | seconds | expected | detail |", "|---|---|---|---|---|"]
    lines += [f"| {o.name} | {o.status} | {o.seconds:.0f} | {o.expected:.0f} | {o.detail} |" for o in outcomes]
    lines += ["", "Commit what it measured (from the repository root):", "", "```", commit_command(), "```", ""]
    (out / "summary.md").write_text("\n".join(lines), encoding="utf-8")
    measured = {o.name: o.seconds for o, s in zip(outcomes, steps)  # not an install that found itself done
                if o.status == "passed" and not s.source.startswith("installed")}
    if measured and not dry_run and record_times:  # a phase adds its steps' times to the other phase's
        known = json.loads(TIMINGS.read_text(encoding="utf-8"))["seconds"] if TIMINGS.exists() else {}
        TIMINGS.parent.mkdir(parents=True, exist_ok=True)
        TIMINGS.write_text(json.dumps({"date": summary["date"], "device": machine.get("gpu", "?"),
                                       "seconds": {**known, **measured}}, indent=2) + "\n", encoding="utf-8")
    with tarfile.open(out / "gpu-check.tar.gz", "w:gz") as tar:
        for path in new_references(since) if not dry_run else []:
            tar.add(ROOT / path, arcname=str(path))
        tar.add(logs, arcname="logs")
        runs = WORK / "runs"  # this call's results.json files and executed notebooks (tests/results can check them)
        for path in sorted(runs.rglob("*")) if runs.exists() and not dry_run else []:
            if path.is_file() and (path.name == "results.json" or path.suffix == ".ipynb") and \
                    path.stat().st_mtime >= since:
                tar.add(path, arcname=str(Path("runs") / path.relative_to(runs)))


class Tee:
    """Everything printed goes to the console and to OUT/log.txt."""

    def __init__(self, stream, path: Path) -> None:
        self.stream, self.file = stream, open(path, "w", encoding="utf-8")

    def write(self, text: str) -> int:
        self.file.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.file.flush()
        self.stream.flush()


def save_references(step: Step, gpu: str) -> None:
    """tools.save_reference for each notebook a passed step ran: data/reference/<notebook>/full-<label>/."""
    for notebook, label in step.references:
        run_dir = Path(step.env["SMOL_RUNS_DIR"]) / notebook
        where = f"{time.strftime('%Y-%m-%d')}, {gpu} under SMOL_EMULATE_T4=1, ./setup_venv.sh gpu-check"
        subprocess.run([sys.executable, "-m", "tools.save_reference", str(run_dir / "results.json"), "--device", label,
                        "--where", where, "--executed", str(run_dir / f"{notebook}.ipynb")],
                       cwd=ROOT, env={**os.environ, **step.env}, check=False)


def machine_facts(dry_run: bool, rehearsal: bool = False) -> dict[str, str]:
    facts = {"python": sys.version.split()[0]}
    try:
        import torch

        facts["torch"] = torch.__version__
        facts["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    except ImportError:
        facts["torch"], facts["gpu"] = "not installed", "unknown"
    if dry_run or rehearsal:
        facts["gpu"] = f"{facts['gpu']} ({'dry run' if dry_run else 'rehearsal on the CPU'})"
    return facts


def freeze(out: Path) -> None:
    listed = subprocess.run([sys.executable, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
                            capture_output=True, text=True)
    (out / "pip-freeze.txt").write_text(listed.stdout, encoding="utf-8")
