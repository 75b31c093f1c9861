"""GRPO on generated arithmetic problems, notebook 04 (LoRA r=16, a supervised cold start, then GRPO), as a script
that `accelerate launch` can scale.

# One process (this machine's GPU, else its CPU): notebook 04's recipe
python recipes/grpo.py --config recipes/configs/grpo.yaml

# Every GPU of this machine, one process each (DDP); set num_processes in the file or with --num_processes
accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/grpo.py --config recipes/configs/grpo.yaml

# A bigger model on every GPU
accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/grpo.py --config recipes/configs/grpo.yaml \
    --model_name HuggingFaceTB/SmolLM2-1.7B-Instruct

# Two processes on a CPU (gloo)
accelerate launch --config_file recipes/accelerate/cpu_2proc.yaml recipes/grpo.py --config recipes/configs/grpo.yaml

Any field of GRPOConfig, of distributed.ModelArguments or of RecipeArguments below can be set in the YAML file or on the
command line (`--max_steps 10`); the command line wins. The cold start (SFTTrainer on worked solutions in the answer
format) takes its settings from RecipeArguments (cold_start_steps, cold_start_learning_rate, cold_start_batch_size; 0
steps skips it); GRPOConfig is GRPO's. Per-device batch x gradient accumulation x processes must be a multiple of
num_generations; when you add processes, the effective batch (per-device batch x gradient accumulation x processes)
stays the notebook's: each process accumulates gradient_accumulation_steps (the one-process value) divided by the number
of processes (distributed.per_process_accumulation, nanoGPT's rule). DeepSpeed is not offered here: the cold start and
GRPO are two Trainers on one model, and each would wrap it in its own DeepSpeed engine. Writes
runs/recipes/<run_name>/results.json: the notebook's results.json (greedy held-out accuracy of the base model, after the
cold start and after GRPO) plus what each rank trained on in the cold start (GRPO's trainer has no data collator to
count with)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import distributed  # recipes/distributed.py, beside this script

ENGINE = distributed.choose_engine()  # Unsloth where this launch fits it (one GPU, or DDP), else plain; first

from datasets import Dataset  # noqa: E402  (after the engine: Unsloth patches transformers and trl when imported)
from transformers import set_seed  # noqa: E402
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer, TrlParser  # noqa: E402

from helpers import models, paired, problems, rewards, runtime  # noqa: E402
from helpers import results as results_io  # noqa: E402


@dataclass
class RecipeArguments:
    """The recipe's own knobs (the model's are distributed.ModelArguments, the rest GRPOConfig's)."""

    notebook: str = field(default="04_grpo_reasoning", metadata={"help": "the notebook this run mirrors"})
    n_train_problems: int = field(default=1000, metadata={"help": "generated training problems (all levels)"})
    n_heldout: int = field(default=800, metadata={"help": "generated held-out problems, scored greedily"})
    n_pass_at_k: int = field(
        default=64, metadata={"help": "held-out problems sampled num_generations times after the cold start (0: skip)"}
    )
    train_seed: int = 1
    heldout_seed: int = 2
    train_levels: list[int] = field(default_factory=lambda: [2, 3], metadata={"help": "the levels GRPO trains on"})
    cold_start_steps: int = field(default=30, metadata={"help": "supervised steps on worked solutions (0: none)"})
    cold_start_learning_rate: float = 1e-3
    cold_start_batch_size: int = 8
    eval_tokens: int = field(default=96, metadata={"help": "new tokens per greedy held-out answer"})
    max_seq_length: int = field(default=512, metadata={"help": "the model's sequence length (FastLanguageModel)"})
    runs_dir: str | None = field(default=None, metadata={"help": "folder of run folders (runs/recipes)"})


def cold_start_config(script: RecipeArguments, config: GRPOConfig) -> SFTConfig:
    """The notebook's cold-start SFTConfig: batch 8, warmup 2, adamw_torch, at cold_start_learning_rate."""
    return SFTConfig(
        output_dir=str(Path(config.output_dir) / "cold_start"),
        per_device_train_batch_size=script.cold_start_batch_size,
        max_steps=max(script.cold_start_steps, 1),
        learning_rate=script.cold_start_learning_rate,
        warmup_steps=2,
        optim="adamw_torch",
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=config.use_cpu,
        ddp_find_unused_parameters=config.ddp_find_unused_parameters,
        seed=config.seed,
    )


def main(script: RecipeArguments, model_args: distributed.ModelArguments, config: GRPOConfig) -> dict | None:
    run = distributed.launch()
    set_seed(config.seed)
    train_problems = problems.make_problems(script.n_train_problems, seed=script.train_seed)
    heldout_problems = problems.make_problems(
        script.n_heldout, seed=script.heldout_seed, exclude={p["question"] for p in train_problems})
    grpo_problems = [p for p in train_problems if p["level"] in script.train_levels]

    model, tokenizer, name = distributed.load_model(ENGINE, model_args, run, script.max_seq_length, config.seed,
                                                    config.use_cpu)
    params = models.count_parameters(model)
    cold_start = SFTTrainer(
        model=model, processing_class=tokenizer, args=cold_start_config(script, config),
        train_dataset=Dataset.from_list(problems.warmup_rows(train_problems)),
    )
    counter = distributed.RankCounter(cold_start.data_collator)
    cold_start.data_collator = counter  # counts what this rank trains on in the cold start

    def solve_rate() -> dict:  # the notebook's held-out measure: greedy answers, EVAL_TOKENS new tokens
        return problems.solve_rate(model, tokenizer, heldout_problems, script.eval_tokens)

    def headroom() -> dict | None:  # pass@k after the cold start: what GRPO can reinforce
        if script.n_pass_at_k <= 0:
            return None
        return problems.pass_at_k(model, tokenizer, heldout_problems[: script.n_pass_at_k], config.num_generations,
                                  script.eval_tokens, config.temperature)

    before = distributed.on_main(cold_start, run, solve_rate)
    with runtime.measure() as cold_start_cost:
        if script.cold_start_steps > 0:
            cold_start.train()
    after_cold_start = distributed.on_main(cold_start, run, solve_rate)
    pass_at_k = distributed.on_main(cold_start, run, headroom)

    trainer = GRPOTrainer(
        model=model, processing_class=tokenizer, reward_funcs=rewards.REWARD_FUNCTIONS, args=config,
        train_dataset=Dataset.from_list(problems.grpo_rows(grpo_problems)),
    )
    adapter_before_grpo = models.trainable_snapshot(model)
    with runtime.measure() as cost:
        trainer.train()
    grpo_weight_change = models.weight_change(adapter_before_grpo, model)
    after = distributed.on_main(trainer, run, solve_rate)
    first_pass = distributed.first_pass_rows(  # rows only this rank takes in the first pass
        len(cold_start.train_dataset), script.cold_start_batch_size, run.world_size)
    ranks = distributed.rank_results(counter, run, first_pass, cold_start.state.log_history, cold_start_cost.seconds)
    if not run.main:
        return None
    steps_with_signal = sum(1 for h in trainer.state.log_history if h.get("frac_reward_zero_std", 1.0) < 1.0)
    settings = {**asdict(script), **asdict(model_args), **{k: getattr(config, k) for k in SETTINGS_RECORDED}}
    return results_io.record(
        script.notebook, runtime.profile(), settings, log_history=trainer.state.log_history, cost=cost,
        loss_key="reward", folder=distributed.runs_dir(config.run_name or "grpo", script.runs_dir),
        recipe="recipes/grpo.py", model=name,
        launch=distributed.launch_record(run, config.per_device_train_batch_size, config.gradient_accumulation_steps),
        cold_start_ranks=ranks,
        train_data=f"generated problems (helpers.problems, seed {script.train_seed})",
        train_problems=len(train_problems), grpo_problems=len(grpo_problems),
        heldout_problems=len(heldout_problems), params=params, cold_start=cold_start_cost.as_dict(),
        heldout_accuracy=(before["accuracy"], after["accuracy"]),
        heldout_format_rate=(before["format_rate"], after["format_rate"]),
        after_cold_start={"heldout_accuracy": after_cold_start["accuracy"],
                          "heldout_format_rate": after_cold_start["format_rate"],
                          "by_level": after_cold_start["by_level"], "pass_at_k": pass_at_k},
        grpo_gain=round(after["accuracy"] - after_cold_start["accuracy"], 4), after_grpo_by_level=after["by_level"],
        grpo_heldout_accuracy=(after_cold_start["accuracy"], after["accuracy"]),  # GRPO's own before -> after
        grpo_weight_change=round(grpo_weight_change, 6), steps_with_reward_signal=steps_with_signal,
        grpo_flips=paired.flips(after_cold_start["right"], after["right"]),  # per problem: cold start -> GRPO
        samples=after["rows"][:6],
    )


SETTINGS_RECORDED = ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps",
                     "max_completion_length", "max_steps", "learning_rate", "beta", "loss_type", "temperature",
                     "warmup_steps", "lr_scheduler_type", "optim", "seed")

if __name__ == "__main__":
    parser = TrlParser((RecipeArguments, distributed.ModelArguments, GRPOConfig))
    main(*parser.parse_args_and_config(distributed.command_line()))
