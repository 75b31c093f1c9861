r"""How far the smoke checks' numbers move across seeds and CPU kernel paths: the spread every bound of
tools/effects.py must lie outside.

  python -m tools.spread run --seed 1 --threads 1 --capability avx2 --out runs/spread [01 02 ...]
  python -m tools.spread run --set LEARNING_RATE=0 --out runs/faults 01      (a deliberately broken change)
  python -m tools.spread run --profile full --set EMBEDDING_LEARNING_RATE=2e-5 --out runs/variants 05
                                                                          (a full-profile run with one knob changed)
  python -m tools.spread summarize runs/spread --save data/reference/spread/smoke-cpu.json

`run` executes the notebooks in the smoke profile into <out>/<variant>/, the variant named for its settings
(seed3407-t2-native). --seed and --set add assignments at the end of each notebook's Settings cell (before its
set_seed call); --threads sets OMP_NUM_THREADS (torch's thread count) and --capability sets ATEN_CPU_CAPABILITY
(default, avx2 or avx512: which of torch's CPU kernels run; results.json records the one that ran). Two variants
with one thread each can run side by side on two cores; two threads each would fight over the cores.
`summarize` reads every <variant>/<notebook>/results.json under a folder and prints, for each effect of
tools/effects.py, each variant's value, the min and max and the bound; --save writes that table as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat

from tools import run_notebooks
from tools.effects import EFFECTS

ROOT = Path(__file__).resolve().parents[1]


def variant_name(seed: int, threads: int, capability: str, assignments: list[str]) -> str:
    name = f"seed{seed}-t{threads}-{capability.lower() if capability else 'native'}"
    return name + "".join("-" + re.sub(r"[^A-Za-z0-9.]+", "_", a).strip("_") for a in assignments)


def run(args: argparse.Namespace) -> int:
    assignments = [f"SEED={args.seed}", *args.set]
    name = variant_name(args.seed, args.threads, args.capability, args.set)
    runs = (args.out / name).resolve()
    os.environ.update(SMOKE_TEST="1" if args.profile == "smoke" else "0", SMOL_RUNS_DIR=str(runs),
                      OMP_NUM_THREADS=str(args.threads))
    if args.capability:
        os.environ["ATEN_CPU_CAPABILITY"] = args.capability
    failed = 0
    for path in run_notebooks.choose(args.notebooks):
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / path.name
            nbformat.write(run_notebooks.with_settings(nbformat.read(path, as_version=4), assignments), copy)
            status, _ = run_notebooks.run_one(copy, runs, args.profile, "cpu")
            failed += status != "done"
    return 1 if failed else 0


def summarize(folder: Path) -> list[dict[str, Any]]:
    """For each effect: its bound and each variant's measured value (variants that ran the notebook)."""
    table = []
    for effect in EFFECTS:
        values = {}
        for path in sorted(folder.glob(f"*/{effect.notebook}/results.json")):
            run = json.loads(path.read_text(encoding="utf-8"))
            values[path.parent.parent.name] = {"value": round(effect.measure(run), 5),
                                               "cpu": run.get("cpu", {}), "seed": run["settings"]["seed"]}
        measured = [v["value"] for v in values.values()]
        table.append({"notebook": effect.notebook, "effect": effect.name, "bound": effect.bound,
                      "at_least": effect.at_least, "min": min(measured, default=None),
                      "max": max(measured, default=None), "variants": values})
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("run", help="run notebooks in the smoke profile under one variant")
    one.add_argument("notebooks", nargs="*")
    one.add_argument("--seed", type=int, default=3407)
    one.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    # lower case: torch ignores ATEN_CPU_CAPABILITY=AVX2 (with a warning) and keeps its own choice
    one.add_argument("--capability", default="", choices=["", "default", "avx2", "avx512"])
    one.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    one.add_argument("--out", type=Path, default=ROOT / "runs" / "spread")
    one.add_argument("--profile", default="smoke", choices=["smoke", "full"],
                     help="full: a variant of the teaching profile (e.g. a reference run with one knob changed)")
    table = sub.add_parser("summarize", help="the spread of every effect over the variants under a folder")
    table.add_argument("folder", type=Path)
    table.add_argument("--save", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run(args)
    rows = summarize(args.folder)
    for row in rows:
        sign = ">=" if row["at_least"] else "<="
        values = ", ".join(f"{k} {v['value']}" for k, v in row["variants"].items())
        print(f"{row['notebook']} | {row['effect']} | {row['min']} .. {row['max']} | bound {sign} {row['bound']} | "
              f"{values}")
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print("saved", args.save)
    return 0


if __name__ == "__main__":
    sys.exit(main())
