"""Commit a measured run as a reference result: data/reference/<notebook>/<profile>-<device>/results.json.

  python tools/save_reference.py runs/01_full_finetuning/results.json --device cpu --where "2026-11-25, 2-core CPU machine"

It copies the notebook's own results.json unchanged and adds "measured" (when and where, in words). Then run
python tools/sync_notebooks.py: the notebooks' bundles carry data/, reference results included.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def save(source: Path, device: str, where: str) -> Path:
    run = json.loads(source.read_text(encoding="utf-8"))
    if not re.fullmatch(r"[a-z0-9-]+", device):
        raise ValueError(f"--device {device!r}: use lower-case letters, digits and '-' (e.g. cpu, h100, t4-emulated-h100)")
    target = ROOT / "data" / "reference" / run["notebook"] / f"{run['profile']}-{device}" / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({**run, "measured": where}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    parser.add_argument("--device", required=True, help="short device name for the folder: cpu, h100, t4-emulated-h100")
    parser.add_argument("--where", required=True, help="when and where it was measured, in words")
    args = parser.parse_args()
    print(save(args.results, args.device, args.where))


if __name__ == "__main__":
    main()
