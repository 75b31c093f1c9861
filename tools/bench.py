"""Unsloth against plain transformers + PEFT + TRL: the same LoRA SFT as notebook 02, timed twice in one run.

  ./setup_venv.sh bench                     both engines, 2 warm-up + 20 timed optimizer steps (CPU-sized)
  ./setup_venv.sh bench --steps 60          more timed steps (a GPU can afford them)
  ./setup_venv.sh bench --save-reference    ... and copy the result to
                                            data/reference/02_lora_finetuning/bench-<cpu|gpu>/bench.json

Each engine trains in its own Python process (`tools/bench.py --engine unsloth` / `--engine plain`), so the plain one
never imports Unsloth (Unsloth patches transformers, PEFT and TRL when imported); the parent collects their JSON and
writes runs/bench/bench.json and runs/bench/bench.png. Same data (data/alpaca_train.jsonl as prompt/completion rows,
loss on the completion only), model (the offline SmolLM2-135M-Instruct), LoRA (r=16, alpha=16, dropout 0, the seven
projections), sequence length, batch, learning rate, schedule and seed as notebook 02; float32 weights on a CPU
(Unsloth's dtype=None choice on a GPU). Evaluation, generation and saving are left out: only training is timed.

Tokens per second counts the non-padding tokens of the batches actually trained (the Trainer's
num_input_tokens_seen with include_num_input_tokens_seen="non_padding"; a count of the attention masks the data
collator produced checks it) between the end of the last warm-up step and the end of training. Peak memory is the
process's peak RSS on a CPU (it includes the model loaded before training) and torch.cuda.max_memory_allocated during
training on a GPU.

The plain engine is the notebooks' (helpers/plain.py, what SMOL_ENGINE=plain runs): the model through
PlainLanguageModel.from_pretrained and .get_peft_model (AutoModelForCausalLM + peft.get_peft_model, transformers'
gradient checkpointing), trained by stock trl.SFTTrainer. TRL 1.15's SFTTrainer scores tokens with a fused LM head
whose Triton kernel (trl/kernels/chunked_logprob.py) cannot run without a GPU ("0 active drivers"); off CUDA the
engine swaps that kernel for the same per-token log-probabilities in torch (torch_lm_head.use_for, what TRL 1.16
does by itself; Unsloth 2026.10.9 pins trl<=1.15.0). `--plain-loss trl` keeps the Triton kernel (to see the failure on
a CPU); `--plain-loss model` instead overrides compute_loss with transformers' Trainer.compute_loss (the model's own
cross-entropy over the full logits), the extension point TRL's deprecation message names.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # recipes/distributed.py, as `recipes.distributed`

from helpers import models, results, runtime  # noqa: E402
from recipes import distributed  # noqa: E402

OUT_DIR = results.runs_root() / "bench"  # runs/bench, or under $SMOL_RUNS_DIR
ENGINES = ("unsloth", "plain")

# Notebook 02's settings, for both engines: its recipe's config, which tests/unit/test_recipes.py compares with the
# notebook's Settings and SFTConfig cells (fields it leaves out take distributed.ModelArguments' defaults).
RECIPE_02 = {
    **vars(distributed.ModelArguments()),
    **yaml.safe_load((ROOT / "recipes" / "configs" / "sft_lora.yaml").read_text(encoding="utf-8")),
}
SEED = RECIPE_02["seed"]
MAX_SEQ_LENGTH = RECIPE_02["max_length"]
LORA_R = RECIPE_02["lora_r"]
LORA_ALPHA = RECIPE_02["lora_alpha"]
LORA_DROPOUT = RECIPE_02["lora_dropout"]
TARGET_MODULES = RECIPE_02["target_modules"]
BATCH_SIZE = RECIPE_02["per_device_train_batch_size"]
GRAD_ACCUM = RECIPE_02["gradient_accumulation_steps"]
LEARNING_RATE = RECIPE_02["learning_rate"]
WARMUP_STEPS = RECIPE_02["warmup_steps"]  # the learning-rate warm-up of 02, not the untimed warm-up steps of the bench
TRAIN_FILE = "data/alpaca_train.jsonl"

DEFAULT_STEPS = 20  # timed optimizer steps: about a minute per engine on a 2-core CPU
DEFAULT_WARMUP = 2  # untimed optimizer steps before them (first-step allocations, Unsloth's compilation)

_PLAIN = (
    "the notebooks' plain engine (helpers/plain.py), no Unsloth in the process: AutoModelForCausalLM + "
    "peft.get_peft_model through PlainLanguageModel, trl.SFTTrainer (TRL's dataset preparation and completion-only "
    "collator)"
)
PLAIN_TORCH_HEAD = _PLAIN + (
    " with TRL's fused LM head computed in torch (torch_lm_head.use_for), because TRL 1.15's Triton kernel for it "
    "needs a GPU"
)
PLAIN_MODEL_LOSS = _PLAIN + " with compute_loss = transformers.Trainer.compute_loss (the model's own cross-entropy)"
PLAIN_TRL_LOSS = _PLAIN + " with TRL's fused LM head on its Triton kernel"
PLAIN_ENGINES = {"torch": PLAIN_TORCH_HEAD, "model": PLAIN_MODEL_LOSS, "trl": PLAIN_TRL_LOSS}


def settings() -> dict[str, Any]:
    """The training settings both engines share (as bench.json records them)."""
    return {
        "model": "SmolLM2-135M-Instruct (offline copy)",
        "train_data": TRAIN_FILE,
        "seed": SEED,
        "max_seq_length": MAX_SEQ_LENGTH,
        "lora_r": LORA_R,
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": LORA_DROPOUT,
        "target_modules": TARGET_MODULES,
        "batch_size": BATCH_SIZE,
        "grad_accum": GRAD_ACCUM,
        "learning_rate": LEARNING_RATE,
        "lr_warmup_steps": WARMUP_STEPS,
    }


# --- arguments -----------------------------------------------------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a whole number of at least 1")
    return value


def not_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: give a whole number of at least 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tools/bench.py",
        description="Train notebook 02's LoRA SFT through Unsloth and through plain transformers + PEFT + TRL; "
        "compare tokens/s, time, peak memory and loss.",
    )
    parser.add_argument(
        "--steps", type=positive, default=DEFAULT_STEPS, help=f"timed optimizer steps ({DEFAULT_STEPS})"
    )
    parser.add_argument(
        "--warmup-steps", type=not_negative, default=DEFAULT_WARMUP,
        help=f"untimed optimizer steps before the timed ones ({DEFAULT_WARMUP})",
    )
    parser.add_argument(
        "--device-label", help='how bench.json names the device (default: the GPU\'s name or "CPU (N cores)")'
    )
    parser.add_argument(
        "--save-reference", action="store_true",
        help="also copy bench.json to data/reference/02_lora_finetuning/bench-<cpu|gpu>/, with a 'measured' line",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="folder for bench.json and bench.png (runs/bench)")
    parser.add_argument(
        "--plain-loss", choices=("auto", "model", "trl"), default="auto",
        help="plain engine's loss: 'auto' as the notebooks' plain engine (TRL's fused LM head, on its Triton kernel "
        "on a GPU and in torch elsewhere); 'trl' the Triton kernel everywhere (fails on a CPU); 'model' the model's "
        "own cross-entropy through Trainer.compute_loss",
    )
    parser.add_argument("--engine", choices=ENGINES, help=argparse.SUPPRESS)  # child mode: train one engine
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)  # child mode: where to write its JSON
    return parser.parse_args(argv)


def child_command(engine: str, args: argparse.Namespace, result: Path) -> list[str]:
    """The command line of one engine's process."""
    return [
        sys.executable, str(Path(__file__).resolve()), "--engine", engine, "--steps", str(args.steps),
        "--warmup-steps", str(args.warmup_steps), "--plain-loss", args.plain_loss, "--out", str(args.out),
        "--result", str(result),
    ]


# --- measuring (pure parts) ----------------------------------------------------------------------------------------


def batch_tokens(batch: Any) -> tuple[int, int]:
    """(non-padding tokens, token positions) of one collated batch: the attention mask's sum, or every position of a
    padding-free batch (no attention mask, position_ids instead). Works on torch tensors and numpy arrays."""
    positions = math.prod(batch["input_ids"].shape)
    if batch.get("attention_mask") is not None:
        return int(batch["attention_mask"].sum()), positions
    return positions, positions


def timed_window(marks: list[dict[str, float]], warmup_steps: int) -> dict[str, float]:
    """Seconds, tokens and steps between the end of step `warmup_steps` (0: the start of training) and the last mark.
    `marks` are {"step", "time", "tokens"} at the start (step 0) and at the end of every optimizer step."""
    by_step = {int(m["step"]): m for m in marks}
    if warmup_steps not in by_step:
        raise ValueError(f"no mark at step {warmup_steps}: training stopped after step {max(by_step, default=0)}")
    start, end = by_step[warmup_steps], marks[-1]
    steps = int(end["step"]) - warmup_steps
    if steps < 1:
        raise ValueError(f"no timed step after the {warmup_steps} warm-up steps")
    seconds = end["time"] - start["time"]
    tokens = int(end["tokens"] - start["tokens"])
    return {
        "timed_steps": steps,
        "seconds": round(seconds, 3),
        "tokens": tokens,
        "tokens_per_second": round(tokens / seconds, 1) if seconds > 0 else None,
        "seconds_per_step": round(seconds / steps, 3),
    }


def collator_tokens(batches: list[tuple[int, int]], grad_accum: int, first_step: int, last_step: int) -> int:
    """Non-padding tokens of optimizer steps first_step+1 .. last_step from the per-batch counts of the collator, in
    the order it made them (each optimizer step takes grad_accum batches; the data loader may have made more)."""
    return sum(real for real, _ in batches[first_step * grad_accum : last_step * grad_accum])


def final_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The training loss logged last (logging_steps=1: the last step's)."""
    losses = [e["loss"] for e in log_history if "loss" in e]
    return round(float(losses[-1]), 4) if losses else None


def loss_curve(log_history: list[dict[str, Any]]) -> list[list[float]]:
    return [[int(e["step"]), round(float(e["loss"]), 4)] for e in log_history if "loss" in e and "step" in e]


# --- the report (pure parts) ---------------------------------------------------------------------------------------

RATIO_KEYS = ("tokens_per_second", "seconds", "peak_memory_mb")


def ratios(engines: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """unsloth / plain for tokens/s, seconds and peak memory (None where either is missing or plain's is 0).
    Above 1 on tokens/s: Unsloth is faster; below 1 on seconds and memory: Unsloth takes less."""
    fast, plain = engines.get("unsloth") or {}, engines.get("plain") or {}
    found = {}
    for key in RATIO_KEYS:
        a, b = fast.get(key), plain.get(key)
        found[key] = round(a / b, 3) if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None
    return found


def summarize(
    engines: dict[str, dict[str, Any]], device: str, gpu: bool, args: argparse.Namespace, total_seconds: float,
    command: str = "tools/bench.py",
) -> dict[str, Any]:
    """bench.json: what was compared, how, each engine's measurement and the unsloth/plain ratios."""
    plain = engines.get("plain") or {}
    return {
        "benchmark": "LoRA SFT of notebook 02: Unsloth vs plain transformers + PEFT + TRL",
        "device": device,
        "gpu": gpu,
        "steps": {"warmup": args.warmup_steps, "timed": args.steps, "total": args.warmup_steps + args.steps},
        "settings": settings(),
        "plain_engine": plain.get("plain_engine", PLAIN_ENGINES.get(plain.get("plain_loss"))),
        "tokens_counted": "non-padding tokens (attention-mask sums) of the batches trained in the timed steps",
        "peak_memory": "process peak RSS (CPU) / torch.cuda.max_memory_allocated during training (GPU)",
        "engines": engines,
        "ratio_unsloth_over_plain": ratios(engines),
        "total_seconds": round(total_seconds, 1),
        "command": command,
    }


def _cell(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(report: dict[str, Any]) -> str:
    """The short table the run prints."""
    head = f"{'engine':<14}{'tokens/s':>10}{'seconds':>10}{'peak MB':>10}{'final loss':>12}"
    steps = report["steps"]
    lines = [f"{report['device']}: {steps['timed']} timed steps after {steps['warmup']} warm-up", head]
    for name, run in report["engines"].items():
        if run.get("error"):
            lines.append(f"{name:<14}failed: {run['error']}")
            continue
        lines.append(
            f"{name:<14}{_cell(run.get('tokens_per_second'), 1):>10}{_cell(run.get('seconds'), 1):>10}"
            f"{_cell(run.get('peak_memory_mb'), 0):>10}{_cell(run.get('final_loss'), 4):>12}"
        )
    r = report["ratio_unsloth_over_plain"]
    lines.append(
        f"{'unsloth/plain':<14}{_cell(r['tokens_per_second'], 2) + 'x':>10}{_cell(r['seconds'], 2) + 'x':>10}"
        f"{_cell(r['peak_memory_mb'], 2) + 'x':>10}"
    )
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> Path:
    """bench.png: tokens/s and peak memory of both engines, bars labelled with their values."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, run in report["engines"].items() if not run.get("error")]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    panels = (("tokens_per_second", "tokens / s (higher is better)", "{:,.0f}"),
              ("peak_memory_mb", "peak memory, MB (lower is better)", "{:,.0f}"))
    for ax, (key, label, fmt) in zip(axes, panels):
        values = [report["engines"][n].get(key) or 0 for n in names]
        bars = ax.bar(names, values, color=["#e8710a", "#1a73e8"][: len(names)])
        ax.bar_label(bars, labels=[fmt.format(v) for v in values], padding=2)
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
    folder = "bench-gpu" if report["gpu"] else "bench-cpu"
    return root / "data" / "reference" / "02_lora_finetuning" / folder / "bench.json"


def save_reference(report: dict[str, Any], root: Path = ROOT, today: str | None = None) -> Path:
    """Copy bench.json to data/reference/02_lora_finetuning/bench-<cpu|gpu>/bench.json, adding "measured": date,
    machine, command."""
    measured = f"{today or date.today().isoformat()}, {report['device']} ({runtime.cpu_model()}), {report['command']}"
    target = reference_path(report, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({**report, "measured": measured}, indent=2) + "\n", encoding="utf-8")
    return target


# --- one engine (child process) ------------------------------------------------------------------------------------


def load_train_dataset():
    from datasets import Dataset

    from helpers import data

    rows = data.load_alpaca(ROOT / TRAIN_FILE)
    return Dataset.from_list([data.alpaca_to_prompt_completion(r) for r in rows]), len(rows)


def model_dir() -> str:
    from helpers.models import offline_model_dir

    return str(offline_model_dir())


def sft_config(output_dir: Path, max_steps: int, **extra: Any):
    """Notebook 02's SFTConfig, without evaluation or saving, logging every step and counting tokens."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=BATCH_SIZE,
        gradient_accumulation_steps=GRAD_ACCUM,
        max_steps=max_steps,
        learning_rate=LEARNING_RATE,
        warmup_steps=WARMUP_STEPS,
        lr_scheduler_type=RECIPE_02["lr_scheduler_type"],
        optim=RECIPE_02["optim"],
        weight_decay=RECIPE_02["weight_decay"],
        max_length=MAX_SEQ_LENGTH,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=SEED,
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
        **extra,
    )


def build_unsloth(max_steps: int, output_dir: Path):
    import torch
    import unsloth  # noqa: F401  (before transformers and trl, as in the notebooks)
    from trl import SFTTrainer
    from unsloth import FastLanguageModel

    from helpers import engine

    gpu = torch.cuda.is_available()
    dtype = engine.default_dtype()  # as notebook 02: bfloat16, float16 on a T4, float32 on a CPU
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=model_dir(), max_seq_length=MAX_SEQ_LENGTH, dtype=dtype, load_in_4bit=False
    )
    models.set_hub_special_tokens(tokenizer)
    model = FastLanguageModel.get_peft_model(
        model, r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT, target_modules=TARGET_MODULES,
        bias="none", use_gradient_checkpointing="unsloth", random_state=SEED,
    )
    dataset, _ = load_train_dataset()
    precision = dict(zip(("bf16", "fp16"), engine.mixed_precision(dtype))) if gpu else {}
    trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=dataset,
                         args=sft_config(output_dir, max_steps, **precision))
    detail = {"unsloth_version": getattr(unsloth, "__version__", "?"), "gradient_checkpointing": "unsloth"}
    return trainer, detail


def build_plain(max_steps: int, output_dir: Path, plain_loss: str):
    import torch
    from transformers import Trainer, set_seed
    from trl import SFTTrainer

    from helpers import engine, plain, torch_lm_head

    gpu = torch.cuda.is_available()
    if plain_loss == "auto":
        plain_loss = "torch" if torch_lm_head.use_for(engine.accelerator()) else "trl"
    set_seed(SEED)
    model, tokenizer = plain.PlainLanguageModel.from_pretrained(
        model_name=model_dir(), max_seq_length=MAX_SEQ_LENGTH, dtype=engine.default_dtype(), load_in_4bit=False
    )
    models.set_hub_special_tokens(tokenizer)
    model = plain.PlainLanguageModel.get_peft_model(
        model, r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=LORA_DROPOUT, target_modules=TARGET_MODULES,
        bias="none", use_gradient_checkpointing="unsloth", random_state=SEED,
    )
    # On a GPU the notebooks' rule (engine.mixed_precision). SFTConfig's bf16 defaults to True; transformers accepts
    # that on a CPU only with use_cpu=True (its error message says so), and then autocasts to bfloat16 on the CPU, as
    # Unsloth's trainer does there.
    dtype = next(model.parameters()).dtype
    precision = dict(zip(("bf16", "fp16"), engine.mixed_precision(dtype))) if gpu else {"use_cpu": True}

    class ModelLossSFTTrainer(SFTTrainer):
        """SFTTrainer with transformers' compute_loss: the model's own cross-entropy, no fused LM head."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs["use_cache"] = False
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    cls = ModelLossSFTTrainer if plain_loss == "model" else SFTTrainer
    dataset, _ = load_train_dataset()
    trainer = cls(model=model, processing_class=tokenizer, train_dataset=dataset,
                  args=sft_config(output_dir, max_steps, **precision))
    detail = {
        "plain_loss": plain_loss,
        "plain_engine": PLAIN_ENGINES[plain_loss],
        "trainer_class": type(trainer).__name__,
        "gradient_checkpointing": "transformers (use_reentrant=False)" if model.is_gradient_checkpointing else "off",
    }
    return trainer, detail


class CountingCollator:
    """Wraps a data collator and records (non-padding tokens, positions) of every batch it makes, in order."""

    def __init__(self, collate: Any):
        self.collate = collate
        self.batches: list[tuple[int, int]] = []

    def __call__(self, features: Any) -> Any:
        batch = self.collate(features)
        self.batches.append(batch_tokens(batch))
        return batch


def peak_memory_mb(gpu: bool) -> tuple[float, str]:
    if gpu:
        import torch

        return torch.cuda.max_memory_allocated() / 2**20, "torch.cuda.max_memory_allocated during training"
    from helpers import runtime

    return runtime.peak_rss_mb(), "process peak RSS"


def run_engine(
    engine: str, steps: int, warmup_steps: int, plain_loss: str = "auto", out: Path = OUT_DIR
) -> dict[str, Any]:
    """Train one engine for warmup_steps + steps optimizer steps; return its measurement."""
    started = time.perf_counter()
    output_dir = out / f"checkpoints-{engine}"
    max_steps = warmup_steps + steps
    if engine == "unsloth":
        trainer, detail = build_unsloth(max_steps, output_dir)
    else:
        trainer, detail = build_plain(max_steps, output_dir, plain_loss)
    import torch
    from transformers import PrinterCallback, TrainerCallback

    gpu = torch.cuda.is_available()
    marks: list[dict[str, float]] = []

    class Marks(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            marks.append({"step": 0, "time": time.perf_counter(), "tokens": state.num_input_tokens_seen})

        def on_step_end(self, args, state, control, **kwargs):
            if gpu:
                torch.cuda.synchronize()
            now = time.perf_counter()
            marks.append({"step": state.global_step, "time": now, "tokens": state.num_input_tokens_seen})

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs and len(marks) > 1:
                seconds = marks[-1]["time"] - marks[-2]["time"]
                print(f"  {engine}: step {state.global_step}/{max_steps}  loss {float(logs['loss']):.4f}  "
                      f"{seconds:.2f} s", flush=True)

    trainer.remove_callback(PrinterCallback)  # its dict per step; Marks prints one short line instead
    trainer.add_callback(Marks())
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    load_seconds = time.perf_counter() - started
    if gpu:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    train_start = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - train_start
    peak, memory_kind = peak_memory_mb(gpu)

    window = timed_window(marks, warmup_steps)
    last_step = int(marks[-1]["step"])
    counted = collator_tokens(counter.batches, GRAD_ACCUM, warmup_steps, last_step)
    if window["tokens"] == 0:  # the trainer did not count (an engine's own training loop): use the collator's count
        seconds = window["seconds"]
        window.update(tokens=counted, tokens_per_second=round(counted / seconds, 1) if seconds > 0 else None)
        tokens_source = "data collator (attention-mask sums); the trainer's num_input_tokens_seen stayed 0"
    else:
        tokens_source = "Trainer num_input_tokens_seen (non_padding)"
    used = counter.batches[: last_step * GRAD_ACCUM]
    real, positions = sum(r for r, _ in used), sum(p for _, p in used)
    from helpers import runtime

    device = runtime.device_name()

    return {
        "engine": engine,
        **detail,
        "unsloth_imported": "unsloth" in sys.modules,
        "device": device,
        "gpu": gpu,
        "torch_threads": torch.get_num_threads(),
        "dtype": str(next(trainer.model.parameters()).dtype),
        "mixed_precision": "bfloat16" if trainer.args.bf16 else "float16" if trainer.args.fp16 else "off",
        "accelerate_mixed_precision": str(trainer.accelerator.mixed_precision),
        "steps": last_step,
        "warmup_steps": warmup_steps,
        **window,
        "tokens_source": tokens_source,
        "tokens_by_collator": counted,
        "padding_share": round(1 - real / positions, 3) if positions else None,
        "load_seconds": round(load_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "peak_memory_mb": round(peak, 1),
        "memory_kind": memory_kind,
        "final_loss": final_loss(trainer.state.log_history),
        "loss_curve": loss_curve(trainer.state.log_history),
        "versions": runtime.versions(),
    }


def child_main(args: argparse.Namespace) -> int:
    result = run_engine(args.engine, args.steps, args.warmup_steps, args.plain_loss, args.out)
    if args.engine == "plain" and result["unsloth_imported"]:
        raise SystemExit("the plain engine's process imported unsloth: the comparison would not be plain")
    args.result.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


# --- both engines (parent process) ---------------------------------------------------------------------------------


def run_child(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    result = args.out / f"{engine}.json"
    result.unlink(missing_ok=True)
    print(f"== {engine}: {args.warmup_steps} warm-up + {args.steps} timed steps", flush=True)
    # In runs/bench, so that Unsloth's compiled cache (unsloth_compiled_cache/, in the working folder) lands there.
    done = subprocess.run(child_command(engine, args, result), cwd=args.out)
    if done.returncode != 0 or not result.exists():
        return {"engine": engine, "error": f"its process exited with {done.returncode} (see the output above)"}
    return json.loads(result.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.engine:
        return child_main(args)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    engines = {engine: run_child(engine, args) for engine in ENGINES}
    measured = [run for run in engines.values() if not run.get("error")]
    gpu = any(run.get("gpu") for run in measured)
    device = args.device_label or (measured[0]["device"] if measured else f"CPU ({os.cpu_count()} cores)")
    command = " ".join(["tools/bench.py", *argv])
    report = summarize(engines, device, gpu, args, time.perf_counter() - start, command)
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
        if (args.steps, args.warmup_steps) != (DEFAULT_STEPS, DEFAULT_WARMUP):
            print(f"note: a reference with non-default steps ({args.warmup_steps} + {args.steps})")
        print("reference:", save_reference(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
