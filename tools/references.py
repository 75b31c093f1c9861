"""The committed reference runs' folders (data/reference/<notebook>/<profile>-<device>/, the recipes' and the spread's
beside them), and the table of runs that ./setup_venv.sh run prints when it is done:

  python -m tools.references      every runs/*/results.json ($SMOL_RUNS_DIR/*/results.json) as a Markdown table
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.results import REFERENCE, REFERENCE_DIR, headline_metrics, runs_root

ROOT = Path(__file__).resolve().parent.parent
RECIPE_REFERENCE_DIR = REFERENCE_DIR / "recipes"  # the recipes' runs (recipes/*.py), not a notebook's
SPREAD_DIR = REFERENCE_DIR / "spread"  # how far the smoke checks' numbers move across seeds and CPUs (tools/spread.py)


def reference_folder(notebook: str, profile: str, device: str, root: Path | None = None) -> Path:
    """data/reference/<notebook>/<profile>-<device>/ under `root`: a notebook's committed reference run on a device."""
    return (ROOT if root is None else root) / REFERENCE / notebook / f"{profile}-{device}"


def notebook_reference_dirs() -> list[Path]:
    """data/reference/<notebook>/ for every notebook with committed reference runs (the recipes' and the spread's
    folders left out)."""
    return sorted(p for p in REFERENCE_DIR.iterdir() if p.is_dir() and p not in (RECIPE_REFERENCE_DIR, SPREAD_DIR))


def summary_markdown(root: Path | None = None, pattern: str = "*/results.json") -> str:
    """A markdown table of every runs/*/results.json (or `pattern` under `root`, e.g. "*/*/results.json" under
    REFERENCE_DIR): profile, device, training time, peak memory, before -> after."""
    root = root or runs_root()
    lines = [
        "| notebook | profile | device | engine | train s | peak MB | before -> after |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in sorted(root.glob(pattern)):
        run = json.loads(path.read_text(encoding="utf-8"))
        metrics = "; ".join(f"{k} {v['before']} -> {v['after']}" for k, v in headline_metrics(run).items())
        train = run.get("train", {})
        lines.append(
            f"| {run.get('notebook', path.parent.name)} | {run.get('profile')} | {run.get('device')} | "
            f"{run.get('engine', 'unsloth')} | {train.get('seconds')} | {train.get('peak_memory_mb')} | {metrics} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary_markdown())
