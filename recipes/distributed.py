"""What the recipes (recipes/*.py) need beyond the notebooks when `accelerate launch` starts several processes: which
process this is, which engine it may use, the command line for this device and number of processes, what each rank
trained on, and one results.json for the whole run. The recipes import it from beside them (`import distributed`).

Nothing here imports torch, transformers or trl at import time: a recipe calls `choose_engine()` first, because
Unsloth must be imported before them.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from helpers import engine, models, plain, results, runtime, switches


@dataclass(frozen=True)
class Launch:
    """How this process was started: its rank, how many processes, and the launcher's distributed type."""

    rank: int
    local_rank: int
    world_size: int
    kind: str  # "single", "ddp", "deepspeed" or "fsdp"
    cpu: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def launch(env: dict[str, str] | None = None) -> Launch:
    """Read what torchrun / `accelerate launch` put in the environment (RANK, LOCAL_RANK, WORLD_SIZE,
    ACCELERATE_USE_DEEPSPEED, ACCELERATE_USE_FSDP, ACCELERATE_USE_CPU); a plain `python recipe.py` is rank 0 of 1."""
    env = dict(os.environ if env is None else env)

    def flag(name: str) -> bool:
        return switches.env_flag(name, env)

    world = int(env.get("WORLD_SIZE", "1"))
    kind = "deepspeed" if flag("ACCELERATE_USE_DEEPSPEED") else "fsdp" if flag("ACCELERATE_USE_FSDP") else None
    return Launch(
        rank=int(env.get("RANK", "0")),
        local_rank=int(env.get("LOCAL_RANK", "0")),
        world_size=world,
        kind=kind or ("ddp" if world > 1 else "single"),
        cpu=flag("ACCELERATE_USE_CPU"),
    )


def unsloth_fits(run: Launch, has_cuda: bool) -> str | None:
    """Why Unsloth does not fit this launch (None when it does). Unsloth runs on NVIDIA GPUs; its multi-GPU guide
    (https://unsloth.ai/docs/basics/multi-gpu-training-with-unsloth) walks through DDP only (`accelerate launch`, one
    process per GPU). DeepSpeed ZeRO and FSDP split the weights Unsloth's patched kernels work on, so those launches
    use plain TRL + PEFT."""
    if not has_cuda or run.cpu:
        return "Unsloth needs an NVIDIA GPU, and this launch has none (or asked for the CPU)"
    if run.kind in ("deepspeed", "fsdp"):
        return f"Unsloth's multi-GPU guide covers DDP, not {run.kind}; plain TRL + PEFT runs it through Accelerate"
    return None


def choose_engine(env: dict[str, str] | None = None) -> str:
    """The engine of a recipe process: helpers.engine.choose, the notebooks' one decision, told why Unsloth does not
    fit this launch where it does not (unsloth_fits; 'auto' then runs plain). Call it before importing transformers."""
    import torch


    env = dict(os.environ if env is None else env)
    run = launch(env)
    with quiet(not run.main):  # every rank chooses the same; rank 0 says so
        return engine.choose(env, unfit=unsloth_fits(run, torch.cuda.is_available()))


def quiet(silent: bool = True) -> Any:
    """A context that swallows what it prints when `silent` (the other ranks, which would repeat rank 0)."""
    return contextlib.redirect_stdout(io.StringIO()) if silent else contextlib.nullcontext()


def command_line(argv: list[str] | None = None, device: str | None = None, bf16_ok: bool | None = None,
                 processes: int | None = None) -> list[str]:
    """The command line for TrlParser, with what this launch needs: `--use_cpu true` without CUDA or an Apple GPU and
    `--fp16 true` on an NVIDIA GPU without bfloat16 (T4, V100), where the command line does not say (TRL's configs
    default to bf16, which transformers refuses on both); and the gradient accumulation of each of `processes`
    processes (per_process_accumulation)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    device = engine.accelerator() if device is None else device
    if device == "cpu" and flag_value(argv, "--use_cpu") is None:
        argv += ["--use_cpu", "true"]
    if device == "cuda" and flag_value(argv, "--bf16") is None and flag_value(argv, "--fp16") is None:
        if bf16_ok is None:
            bf16_ok = engine.bf16_supported()
        if not bf16_ok:
            argv += ["--fp16", "true"]
    return per_process_accumulation(argv, launch().world_size if processes is None else processes)


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value a command line gives `flag` (`--flag value` or `--flag=value`; the last one wins), else None."""
    found = None
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith(flag + "="):
            found = arg.split("=", 1)[1]
    return found


def per_process_accumulation(argv: list[str], processes: int) -> list[str]:
    """nanoGPT's rule: gradient_accumulation_steps, from the command line or else the --config file, is the one-process
    value (the notebook's); on `processes` processes each accumulates that divided by their number, so per-device batch
    x accumulation x processes, the effective batch, stays the notebook's. ValueError when it does not divide."""
    if processes == 1:
        return argv
    given = flag_value(argv, "--gradient_accumulation_steps")
    config = flag_value(argv, "--config")
    if given is None and config is not None:
        given = (yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}).get("gradient_accumulation_steps")
    one = int(given or 1)
    if one % processes:
        raise ValueError(
            f"gradient_accumulation_steps {one} (for one process) does not divide among {processes} processes: keep "
            "the effective batch with a smaller --per_device_train_batch_size and a larger "
            "--gradient_accumulation_steps"
        )
    return [*argv, "--gradient_accumulation_steps", str(one // processes)]


def effective_batch(per_device: int, grad_accum: int, processes: int) -> int:
    """Examples per optimizer step: per-device batch x gradient accumulation x processes."""
    return per_device * grad_accum * processes


def row_digest(ids: list[int]) -> str:
    """A short fingerprint of one training row's token ids (no padding), to tell which rank trained on which rows."""
    return hashlib.sha1(json.dumps(ids).encode()).hexdigest()[:12]


class RankCounter:
    """Wraps a data collator and counts, in this process, the batches, rows and non-padding tokens it made, and a
    fingerprint of each row: what this rank was given (the data loader makes one batch ahead of training, so the
    counts include one batch more than was trained)."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator
        self.batches = 0
        self.rows = 0
        self.tokens = 0
        self.digests: list[str] = []

    def __call__(self, features: list[Any]) -> Any:
        batch = self.collator(features)
        mask = batch.get("attention_mask")
        ids = batch["input_ids"]
        self.batches += 1
        self.rows += int(ids.shape[0])
        self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())
        for i in range(ids.shape[0]):
            row = ids[i][mask[i].bool()] if mask is not None else ids[i]
            self.digests.append(row_digest(row.tolist()))
        return batch

    def report(self, rank: int, peak_memory_mb: float | None = None) -> dict[str, Any]:
        """This rank's counts and fingerprints (and its peak memory, when given)."""
        found = {"rank": rank, "pid": os.getpid(), "batches": self.batches, "rows": self.rows, "tokens": self.tokens,
                 "row_digests": self.digests}
        if peak_memory_mb is not None:
            found["peak_memory_mb"] = round(peak_memory_mb, 1)
        return found


def gather(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rank's report, in rank order (all ranks must call it); [report] without torch.distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return [report]
    found: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(found, report)
    return found


def first_pass_rows(examples: int, per_device: int, processes: int, rows_per_example: int = 1) -> int:
    """Rows each rank takes from the full batches of the first pass over `examples`: the sampler deals one shuffled
    pass out batch by batch, and a short last batch is topped up with rows from the start of the data (Accelerate's
    even_batches), so only the full batches are sure to hold rows no other rank has. DPO makes 2 rows per pair."""
    return examples // (per_device * processes) * per_device * rows_per_example


def rank_summary(reports: list[dict[str, Any]], rows_per_pass: int | None = None) -> dict[str, Any]:
    """What results.json records about the ranks: per rank its pid, batches, rows, tokens and peak memory; and how
    many rows two ranks were both given among each rank's first `rows_per_pass` rows (first_pass_rows: the full
    batches of the first pass; 0 means the data was split, not copied). Later passes reshuffle, so there the same
    row may land on another rank."""
    firsts = [set(r["row_digests"][:rows_per_pass]) for r in reports]
    shared = sum(len(a & b) for i, a in enumerate(firsts) for b in firsts[i + 1 :])
    keys = ("rank", "pid", "batches", "rows", "tokens", "peak_memory_mb")
    return {
        "per_rank": [{k: r[k] for k in keys if k in r} for r in reports],
        "rows_per_pass_per_rank": rows_per_pass,
        "rows_shared_in_first_pass": shared,
    }


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def whole_weights(trainer: Any) -> Any:
    """A context in which every rank holds the full weights (DeepSpeed ZeRO-3 shards them; all ranks must enter it),
    so the main process can evaluate with the notebooks' helpers. Elsewhere it does nothing."""
    if getattr(trainer, "is_deepspeed_enabled", False):
        import deepspeed

        if trainer.accelerator.state.deepspeed_plugin.zero_stage == 3:
            return deepspeed.zero.GatheredParameters(list(trainer.model.parameters()), modifier_rank=None)
    return contextlib.nullcontext()


def on_main(trainer: Any, run: Launch, measure: Any) -> Any:
    """`measure()` on the main process with the full weights in hand (whole_weights), while the other ranks wait;
    its result on the main process, None on the others. Every rank must call it."""
    with whole_weights(trainer):
        found = measure() if run.main else None
    barrier()
    return found


def launch_record(run: Launch, per_device: int, grad_accum: int) -> dict[str, Any]:
    """What results.json records about the launch: kind, processes and the effective batch."""
    return {"kind": run.kind, "processes": run.world_size, "per_device_batch": per_device,
            "gradient_accumulation_steps": grad_accum,
            "effective_batch": effective_batch(per_device, grad_accum, run.world_size)}


def throughput(log_history: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Tokens trained (TRL's logged num_tokens, summed over every rank) and tokens per second of training time;
    {} where the trainer logs no num_tokens."""
    counts = [float(row["num_tokens"]) for row in log_history if "num_tokens" in row]
    if not counts or seconds <= 0:
        return {}
    return {"train_tokens": int(counts[-1]), "tokens_per_second": round(counts[-1] / seconds, 1)}


# --- the model, as every recipe loads it ----------------------------------------------------------------------------

SEVEN_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class ModelArguments:
    """Which model and which adapters, for every recipe (TrlParser reads it beside the recipe's own arguments and its
    TRL config). Not TRL's ModelConfig: there dtype "auto" means the checkpoint's dtype and the default is float32,
    while the notebooks pick by device (Unsloth's dtype=None)."""

    model_name: str = field(
        default="auto",
        metadata={"help": '"auto" (the hub when reachable, else the offline copy), "hub", "offline", or any model id, '
                  "e.g. HuggingFaceTB/SmolLM2-1.7B-Instruct"},
    )
    dtype: str = field(
        default="auto",
        metadata={"help": '"auto": bfloat16 on a GPU that has it, else float16, float32 on a CPU; or "float32"'},
    )
    lora: bool = field(default=True, metadata={"help": "LoRA adapters (False: train every weight, notebook 01)"})
    lora_r: int = 16
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(SEVEN_PROJECTIONS))
    modules_to_save: list[str] | None = field(
        default=None, metadata={"help": "layers trained whole beside LoRA (notebook 05: embed_tokens lm_head)"}
    )


def load_model(engine_name: str, args: ModelArguments, run: Launch, max_seq_length: int, seed: int,
               use_cpu: bool = False) -> tuple[Any, Any, str]:
    """(model, tokenizer, model name): the notebooks' calls, FastLanguageModel.from_pretrained and .get_peft_model on
    Unsloth (one GPU per process: device_map on the local rank, as Unsloth's multi-GPU guide does); on the plain
    engine AutoModelForCausalLM.from_pretrained, left on the CPU for the Trainer (or DeepSpeed) to place, and
    PlainLanguageModel.get_peft_model (PEFT's LoraConfig). Rank 0 says which model and why."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer


    if "/" in args.model_name:
        name = args.model_name
    else:  # "auto", "hub" or "offline", as the notebooks' MODEL_SOURCE
        with quiet(not run.main):
            name = models.model_name(args.model_name)
    gpu = torch.cuda.is_available() and not use_cpu
    dtype = torch.float32 if args.dtype == "float32" else engine.default_dtype("cuda" if gpu else "cpu")
    if engine_name == "unsloth":
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=name, max_seq_length=max_seq_length, dtype=dtype, load_in_4bit=False,
            full_finetuning=not args.lora, device_map={"": run.local_rank},
        )
    else:
        FastLanguageModel = plain.PlainLanguageModel
        model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(name)
        tokenizer.model_max_length = max_seq_length
    models.set_hub_special_tokens(tokenizer)
    if args.lora:
        model = FastLanguageModel.get_peft_model(
            model,
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=args.target_modules,
            modules_to_save=args.modules_to_save,
            bias="none",
            use_gradient_checkpointing="unsloth",
            random_state=seed,
        )
    return model, tokenizer, name


def rank_results(counter: RankCounter, run: Launch, rows_per_pass: int | None, log_history: list[dict[str, Any]],
                 seconds: float) -> dict[str, Any] | None:
    """What results.json records about the ranks (rank_summary, with each rank's peak memory) and the throughput;
    every rank must call it; None on all but the main process."""

    reports = gather(counter.report(run.rank, runtime.peak_memory_mb()))
    if not run.main:
        return None
    return {"ranks": rank_summary(reports, rows_per_pass), **throughput(log_history, seconds)}


def step_marks(trainer: Any) -> list[list[float]]:
    """A list that fills while `trainer` trains: [optimizer step, seconds since training began, TRL's running count of
    non-padding tokens (its logged num_tokens; None on a step it did not log)], from [0, 0.0, 0] on; what
    tools/bench.py times its window with. A GPU is synchronised before each step is timed."""
    import time

    import torch
    from transformers import TrainerCallback

    marks: list[list[float]] = []
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

    class Marks(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            self.start = time.perf_counter()
            marks.append([0, 0.0, 0])

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            sync()
            marks.append([state.global_step, round(time.perf_counter() - self.start, 3), None])

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **_: Any) -> None:
            if logs and "num_tokens" in logs and marks and marks[-1][0] == state.global_step:
                marks[-1][2] = int(logs["num_tokens"])

    trainer.add_callback(Marks())
    return marks


def train_measured(trainer: Any, run: Launch, measure: Any, rows_per_example: int = 1) -> tuple[Any, Any, Any, Any]:
    """The recipes' common course: count what this rank trains on (RankCounter around the trainer's collator),
    `measure()` on the main process before and after trainer.train() (on_main), time and memory of the training
    (runtime.measure) and of each step (step_marks), then the ranks' report (rank_results, with the step marks).
    Returns (before, after, cost, ranks); before, after and ranks are None on all but the main process."""

    counter = RankCounter(trainer.data_collator)
    trainer.data_collator = counter
    marks = step_marks(trainer)
    before = on_main(trainer, run, measure)
    with runtime.measure() as cost:
        trainer.train()
    after = on_main(trainer, run, measure)
    first_pass = first_pass_rows(len(trainer.train_dataset), trainer.args.per_device_train_batch_size,
                                 run.world_size, rows_per_example)
    ranks = rank_results(counter, run, first_pass, trainer.state.log_history, cost.seconds)
    return before, after, cost, None if ranks is None else {**ranks, "step_marks": marks}


def runs_dir(run_name: str, root: str | Path | None = None) -> Path:
    """Where a recipe run writes: <root>/<run_name>/ (root: recipes/ in the notebooks' runs folder, results.runs_root:
    $SMOL_RUNS_DIR, else runs/)."""

    return Path(root if root is not None else results.runs_root() / "recipes").expanduser() / run_name
