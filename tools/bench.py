"""Unsloth against plain transformers + PEFT + TRL: notebook 02's recipe run once per engine, and compared.

  ./setup_venv.sh bench                     both engines, 2 untimed + 20 timed optimizer steps (CPU-sized)
  ./setup_venv.sh bench --steps 60          more timed steps (a GPU can afford them)
  ./setup_venv.sh bench --save-reference    ... and copy the comparison to
                                            data/reference/02_lora_finetuning/bench-<cpu|gpu>/bench.json

Each engine is one run of recipes/sft.py with notebook 02's config (recipes/configs/sft_lora.yaml: its data, LoRA,
sequence length, batch, learning rate, schedule and seed), for the warm-up plus the timed steps, in its own process
with SMOL_ENGINE set, so the plain run never imports Unsloth (which patches transformers, PEFT and TRL when imported).
Its held-out loss is taken on one row only, and outside the timed window. The recipe records when each optimizer
step ended and TRL's running count of non-padding tokens (`step_marks`, recipes/distributed.step_marks); the bench
times the window from the end of the last warm-up step to the end of training. Peak memory is the recipe's
(runtime.measure: the process's peak RSS on a CPU, including the model loaded before training; the GPU's peak
allocation during training). The plain engine is the notebooks' (helpers/plain.py, what SMOL_ENGINE=plain runs),
with TRL 1.15's fused LM head computed in torch off CUDA (its Triton kernel needs a GPU; helpers/torch_lm_head.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from helpers import results, runtime
from tools import references

ROOT = Path(__file__).resolve().parent.parent

OUT_DIR = results.runs_root() / "bench"  # runs/bench, or under $SMOL_RUNS_DIR
ENGINES = ("unsloth", "plain")
CONFIG = "recipes/configs/sft_lora.yaml"  # notebook 02's recipe, generated from its Settings
DEFAULT_STEPS = 20  # timed optimizer steps: about a minute per engine on a 2-core CPU
DEFAULT_WARMUP = 2  # untimed optimizer steps before them (first-step allocations, Unsloth's compilation)
PLAIN_ENGINE = (
    "the notebooks' plain engine (helpers/plain.py), no Unsloth in the process: AutoModelForCausalLM + "
    "peft.get_peft_model through PlainLanguageModel, trl.SFTTrainer (TRL's dataset preparation and completion-only "
    "collator), TRL's fused LM head computed in torch off CUDA (helpers/torch_lm_head.py)"
)
RATIO_KEYS = ("tokens_per_second", "seconds", "peak_memory_mb")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    def at_least(low: int):
        def parse(text: str) -> int:
            if int(text) < low:
                raise argparse.ArgumentTypeError(f"{text}: give a whole number of at least {low}")
            return int(text)
        return parse

    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=at_least(1), default=DEFAULT_STEPS,
                        help=f"timed optimizer steps ({DEFAULT_STEPS})")
    parser.add_argument("--warmup-steps", type=at_least(0), default=DEFAULT_WARMUP,
                        help=f"untimed optimizer steps before the timed ones ({DEFAULT_WARMUP})")
    parser.add_argument("--device-label", help='how bench.json names the device (default: the recipe\'s, e.g. '
                        '"CPU (2 cores)")')
    parser.add_argument("--save-reference", action="store_true",
                        help="also copy bench.json to data/reference/02_lora_finetuning/bench-<cpu|gpu>/")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for the runs, bench.json and bench.png")
    return parser.parse_args(argv)


def recipe_command(engine: str, args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """One engine's run: recipes/sft.py on notebook 02's config for warm-up + timed steps, and its environment."""
    command = [
        sys.executable, str(ROOT / "recipes" / "sft.py"), "--config", str(ROOT / CONFIG),
        "--max_steps", str(args.warmup_steps + args.steps), "--logging_steps", "1", "--eval_rows", "1",
        "--run_name", f"bench-{engine}", "--runs_dir", str(args.out),
        "--output_dir", str(args.out / f"bench-{engine}" / "checkpoints"),
    ]
    return command, {**os.environ, "SMOL_ENGINE": engine}


def timed_window(marks: list[list[Any]], warmup_steps: int) -> dict[str, Any]:
    """Steps, seconds and tokens from the end of step `warmup_steps` (0: the start of training) to the last mark;
    `marks` are a recipe's step_marks, [step, seconds, tokens]."""
    by_step = {int(step): (seconds, tokens) for step, seconds, tokens in marks}
    if warmup_steps not in by_step:
        raise ValueError(f"no mark at step {warmup_steps}: training stopped after step {max(by_step, default=0)}")
    steps = int(marks[-1][0]) - warmup_steps
    if steps < 1:
        raise ValueError(f"no timed step after the {warmup_steps} warm-up steps")
    (start, first), (end, last) = by_step[warmup_steps], by_step[int(marks[-1][0])]
    if first is None or last is None:
        raise ValueError("the trainer logged no num_tokens at the window's ends: run with --logging_steps 1")
    seconds, tokens = end - start, int(last - first)
    return {"timed_steps": steps, "seconds": round(seconds, 3), "tokens": tokens,
            "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
            "seconds_per_step": round(seconds / steps, 3)}


def engine_result(run: dict[str, Any], warmup_steps: int) -> dict[str, Any]:
    """One engine's line of bench.json, from its recipe's results.json."""
    curve = run["loss_curve"]
    return {
        "engine": run["engine"], "unsloth_imported": run["unsloth_imported"], "device": run["device"],
        "gpu": run["environment"] != "cpu", "steps": run["steps"], "warmup_steps": warmup_steps,
        **timed_window(run["step_marks"], warmup_steps),
        "tokens_source": "TRL's logged num_tokens (attention-mask sums of the batches trained)",
        "train_seconds": run["train"]["seconds"], "peak_memory_mb": run["train"]["peak_memory_mb"],
        "memory_kind": run["train"]["memory_kind"], "final_loss": curve["loss"][-1],
        "loss_curve": [list(pair) for pair in zip(curve["step"], curve["loss"])], "versions": run["versions"],
    }


def run_engine(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one engine's recipe; its engine_result, or {"engine", "error"} when it failed."""
    command, env = recipe_command(engine, args)
    found = args.out / f"bench-{engine}" / "results.json"
    found.unlink(missing_ok=True)
    print(f"== {engine}: {args.warmup_steps} warm-up + {args.steps} timed steps\n   {' '.join(command)}", flush=True)
    # In the output folder, so that Unsloth's compiled cache (unsloth_compiled_cache/) lands there.
    done = subprocess.run(command, env=env, cwd=args.out)
    if done.returncode != 0 or not found.exists():
        return {"engine": engine, "error": f"its recipe exited with {done.returncode} (see the output above)"}
    result = engine_result(json.loads(found.read_text(encoding="utf-8")), args.warmup_steps)
    if result["engine"] != engine or (engine == "plain" and result["unsloth_imported"]):
        return {"engine": engine, "error": f"the recipe ran {result['engine']} (unsloth imported: "
                f"{result['unsloth_imported']}), not {engine}"}
    return result


def ratios(engines: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """unsloth / plain for tokens/s, seconds and peak memory (None where either is missing or plain's is 0).
    Above 1 on tokens/s: Unsloth is faster; below 1 on seconds and memory: Unsloth takes less."""
    fast, plain = engines.get("unsloth") or {}, engines.get("plain") or {}
    found = {}
    for key in RATIO_KEYS:
        a, b = fast.get(key), plain.get(key)
        found[key] = round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
    return found


def summarize(engines: dict[str, dict[str, Any]], device: str, args: argparse.Namespace, total_seconds: float,
              command: str = "python -m tools.bench") -> dict[str, Any]:
    """bench.json: what was compared, how, each engine's measurement and the unsloth/plain ratios."""
    return {
        "benchmark": "LoRA SFT of notebook 02 (recipes/sft.py): Unsloth vs plain transformers + PEFT + TRL",
        "device": device, "gpu": any(run.get("gpu") for run in engines.values()),
        "steps": {"warmup": args.warmup_steps, "timed": args.steps, "total": args.warmup_steps + args.steps},
        "config": CONFIG, "plain_engine": PLAIN_ENGINE,
        "tokens_counted": "non-padding tokens of the batches trained in the timed steps",
        "peak_memory": "process peak RSS (CPU) / the GPU's peak allocation during training",
        "engines": engines, "ratio_unsloth_over_plain": ratios(engines),
        "total_seconds": round(total_seconds, 1), "command": command,
    }


def table(report: dict[str, Any]) -> str:
    """The short table the run prints."""
    def cell(value: Any, digits: int) -> str:
        return "-" if value is None else f"{value:,.{digits}f}"

    steps = report["steps"]
    lines = [f"{report['device']}: {steps['timed']} timed steps after {steps['warmup']} warm-up",
             f"{'engine':<14}{'tokens/s':>10}{'seconds':>10}{'peak MB':>10}{'final loss':>12}"]
    for name, run in report["engines"].items():
        lines.append(f"{name:<14}failed: {run['error']}" if run.get("error") else
                     f"{name:<14}{cell(run['tokens_per_second'], 1):>10}{cell(run['seconds'], 1):>10}"
                     f"{cell(run['peak_memory_mb'], 0):>10}{cell(run['final_loss'], 4):>12}")
    r = report["ratio_unsloth_over_plain"]
    lines.append(f"{'unsloth/plain':<14}" + "".join(f"{cell(r[k], 2) + 'x':>10}" for k in RATIO_KEYS))
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path:
    """bench.png: tokens/s and peak memory of both engines, bars labelled with their values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, run in report["engines"].items() if not run.get("error")]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    for ax, (key, label) in zip(axes, (("tokens_per_second", "tokens / s (higher is better)"),
                                       ("peak_memory_mb", "peak memory, MB (lower is better)"))):
        values = [report["engines"][n].get(key) or 0 for n in names]
        bars = ax.bar(names, values, color=["#e8710a", "#1a73e8"][: len(names)])
        ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], padding=2)
        ax.set_title(label, fontsize=10)
        ax.set_ylim(0, max(values + [1]) * 1.18)
        ax.spines[["top", "right"]].set_visible(False)
    ratio = report["ratio_unsloth_over_plain"]["tokens_per_second"]
    title = f"LoRA SFT (notebook 02) on {report['device']}"
    fig.suptitle(title + (f": Unsloth {ratio:.2f}x plain tokens/s" if ratio else ""), fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reference_path(report: dict[str, Any], root: Path = ROOT) -> Path:
    # Beside 02's reference runs, as bench.json: it is not a notebook run, so the results.json tables skip it.
    device = "gpu" if report["gpu"] else "cpu"
    return references.reference_folder("02_lora_finetuning", "bench", device, root) / "bench.json"


def save_reference(report: dict[str, Any], root: Path = ROOT, today: str | None = None) -> Path:
    """Copy bench.json to data/reference/02_lora_finetuning/bench-<cpu|gpu>/bench.json, adding "measured": date,
    machine, command."""
    measured = f"{today or date.today().isoformat()}, {report['device']} ({runtime.cpu_model()}), {report['command']}"
    target = reference_path(report, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({**report, "measured": measured}, indent=2) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    engines = {engine: run_engine(engine, args) for engine in ENGINES}
    measured = [run for run in engines.values() if not run.get("error")]
    device = args.device_label or (measured[0]["device"] if measured else f"CPU ({os.cpu_count()} cores)")
    report = summarize(engines, device, args, time.perf_counter() - start, " ".join(["python -m tools.bench", *argv]))
    (args.out / "bench.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot(report, args.out / "bench.png")
    print(table(report))
    print(f"plain engine: {report['plain_engine']}")
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'bench.png'} ({report['total_seconds']:.0f} s in all)")
    failed = [name for name, run in engines.items() if run.get("error")]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if args.save_reference:
        print("reference:", save_reference(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
