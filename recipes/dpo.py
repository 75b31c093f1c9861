"""Direct preference optimisation, notebook 03 (LoRA r=16, beta 0.1), as a script that `accelerate launch` can scale.

# One process (this machine's GPU, else its CPU): notebook 03's recipe
python recipes/dpo.py --config recipes/configs/dpo.yaml

# Every GPU of this machine, one process each (DDP); set num_processes in the file or with --num_processes
accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/dpo.py --config recipes/configs/dpo.yaml

# DeepSpeed ZeRO-2 / ZeRO-3 (pip install deepspeed first), e.g. for the 1.7B model
accelerate launch --config_file recipes/accelerate/deepspeed_zero3.yaml recipes/dpo.py \
    --config recipes/configs/dpo.yaml --model_name HuggingFaceTB/SmolLM2-1.7B-Instruct

# Two processes on a CPU (gloo), as the tests run it
accelerate launch --config_file recipes/accelerate/cpu_2proc.yaml recipes/dpo.py --config recipes/configs/dpo.yaml

Any field of DPOConfig, of distributed.ModelArguments (model_name, lora_r, ...) or of RecipeArguments below can be set
in the YAML file or on the command line (`--max_steps 10`); the command line wins. There is no reference model to load:
with LoRA and ref_model=None, TRL keeps a frozen copy of the untrained adapter (`ref`) and computes the reference
through it; an untrained adapter adds nothing, so that is the base model, which is what the held-out measure uses with
the adapter switched off. When you add processes, the effective batch (per-device batch x gradient accumulation x
processes) stays the notebook's: each process accumulates gradient_accumulation_steps (the one-process value) divided by
the number of processes (distributed.per_process_accumulation, nanoGPT's rule). Writes
runs/recipes/<run_name>/results.json: the notebook's results.json (held-out reward accuracy and margin before and after)
plus what each rank trained on (rows there are sequences: each pair is a chosen and a rejected row)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import distributed  # recipes/distributed.py, beside this script

ENGINE = distributed.choose_engine()  # Unsloth where this launch fits it (one GPU, or DDP), else plain; first

from datasets import Dataset  # noqa: E402  (after the engine: Unsloth patches transformers and trl when imported)
from transformers import set_seed  # noqa: E402
from trl import DPOConfig, DPOTrainer, TrlParser  # noqa: E402

from helpers import DATA_DIR, data, evaluation, models, runtime  # noqa: E402
from helpers import results as results_io  # noqa: E402


@dataclass
class RecipeArguments:
    """The recipe's own knobs (the model's are distributed.ModelArguments, the rest DPOConfig's)."""

    notebook: str = field(default="03_dpo_alignment", metadata={"help": "the notebook this run mirrors"})
    data_source: str = field(default="auto", metadata={"help": '"auto", "hub" (Intel/orca_dpo_pairs) or "local"'})
    hub_train_rows: int = field(default=2000, metadata={"help": "pairs taken from the hub dataset"})
    train_rows: int | None = field(default=None, metadata={"help": "use only the first N training pairs"})
    eval_pairs: int | None = field(default=None, metadata={"help": "score only the first N held-out pairs"})
    runs_dir: str | None = field(default=None, metadata={"help": "folder of run folders (runs/recipes)"})


def main(script: RecipeArguments, model_args: distributed.ModelArguments, config: DPOConfig) -> dict | None:
    run = distributed.launch()
    set_seed(config.seed)
    use_hub = runtime.use_hub_data(script.data_source)
    train_pairs = data.load_preferences_hub(limit=script.hub_train_rows) if use_hub else data.load_preferences(
        DATA_DIR / "dpo_train.jsonl")
    train_pairs = train_pairs[: script.train_rows]
    heldout_pairs = data.load_preferences(DATA_DIR / "dpo_heldout.jsonl")[: script.eval_pairs]

    model, tokenizer, name = distributed.load_model(ENGINE, model_args, run, config.max_length, config.seed,
                                                    config.use_cpu)  # LoRA: an untrained copy is the reference
    params = models.count_parameters(model)
    trainer = DPOTrainer(
        model=model, ref_model=None, processing_class=tokenizer, args=config,
        train_dataset=Dataset.from_list(train_pairs),
    )

    def heldout_preferences() -> dict:  # the notebook's held-out measure: DPO's implicit rewards, adapter on vs off
        return evaluation.preference_metrics(trainer.model, tokenizer, heldout_pairs, config.beta, config.max_length)

    before, after, cost, ranks = distributed.train_measured(  # 2 rows per pair: chosen and rejected
        trainer, run, heldout_preferences, rows_per_example=2)
    if not run.main:
        return None
    settings = {**asdict(script), **asdict(model_args), **{k: getattr(config, k) for k in SETTINGS_RECORDED}}
    return results_io.record(
        script.notebook, runtime.profile(), settings, log_history=trainer.state.log_history, cost=cost,
        folder=distributed.runs_dir(config.run_name or "dpo", script.runs_dir),
        recipe="recipes/dpo.py", model=name,
        launch=distributed.launch_record(run, config.per_device_train_batch_size, config.gradient_accumulation_steps),
        **ranks,
        train_data="Intel/orca_dpo_pairs" if use_hub else "data/dpo_train.jsonl",
        train_pairs=len(train_pairs), heldout_pairs=len(heldout_pairs), params=params,
        **evaluation.preference_changes(before, after),
    )


SETTINGS_RECORDED = ("beta", "per_device_train_batch_size", "gradient_accumulation_steps", "max_steps",
                     "learning_rate", "warmup_steps", "lr_scheduler_type", "optim", "max_length", "seed")

if __name__ == "__main__":
    parser = TrlParser((RecipeArguments, distributed.ModelArguments, DPOConfig))
    main(*parser.parse_args_and_config(distributed.command_line()))
