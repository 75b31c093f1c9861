"""Supervised fine-tuning, notebooks 01 (full) and 02 (LoRA r=16), as a script that `accelerate launch` can scale.

# One process (this machine's GPU, else its CPU): notebook 02's recipe, then notebook 01's
python recipes/sft.py --config recipes/configs/sft_lora.yaml
python recipes/sft.py --config recipes/configs/sft_full.yaml

# Every GPU of this machine, one process each (DDP); set num_processes in the file or with --num_processes
accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/sft.py --config recipes/configs/sft_lora.yaml

# DeepSpeed ZeRO-2 / ZeRO-3 (pip install deepspeed first), e.g. for the 1.7B model
accelerate launch --config_file recipes/accelerate/deepspeed_zero3.yaml recipes/sft.py \
    --config recipes/configs/sft_full.yaml --model_name HuggingFaceTB/SmolLM2-1.7B-Instruct

# Two processes on a CPU (gloo), as the tests run it
accelerate launch --config_file recipes/accelerate/cpu_2proc.yaml recipes/sft.py --config recipes/configs/sft_lora.yaml

Any field of SFTConfig, of distributed.ModelArguments (model_name, lora, lora_r, ...) or of RecipeArguments below can be
set in the YAML file or on the command line (`--max_steps 10`); the command line wins. When you add processes, the
effective batch (per-device batch x gradient accumulation x processes) stays the notebook's: each process accumulates
gradient_accumulation_steps (the one-process value) divided by the number of processes
(distributed.per_process_accumulation, nanoGPT's rule). Writes runs/recipes/<run_name>/results.json, the notebooks'
results.json plus what each rank trained on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import distributed  # recipes/distributed.py, beside this script

ENGINE = distributed.choose_engine()  # Unsloth where this launch fits it (one GPU, or DDP), else plain; first

from datasets import Dataset  # noqa: E402  (after the engine: Unsloth patches transformers and trl when imported)
from transformers import set_seed  # noqa: E402
from trl import SFTConfig, SFTTrainer, TrlParser  # noqa: E402

from helpers import DATA_DIR, data, evaluation, models, runtime  # noqa: E402
from helpers import results as results_io  # noqa: E402


@dataclass
class RecipeArguments:
    """The recipe's own knobs (the model's are distributed.ModelArguments, the rest SFTConfig's)."""

    notebook: str = field(default="02_lora_finetuning", metadata={"help": "the notebook this run mirrors"})
    data_source: str = field(default="auto", metadata={"help": '"auto", "hub" (yahma/alpaca-cleaned) or "local"'})
    hub_train_rows: int = field(default=5000, metadata={"help": "rows taken from the hub dataset"})
    train_rows: int | None = field(default=None, metadata={"help": "use only the first N training rows"})
    eval_rows: int | None = field(default=None, metadata={"help": "score only the first N held-out rows"})
    runs_dir: str | None = field(default=None, metadata={"help": "folder of run folders (runs/recipes)"})


def main(script: RecipeArguments, model_args: distributed.ModelArguments, config: SFTConfig) -> dict | None:
    run = distributed.launch()
    set_seed(config.seed)
    use_hub = runtime.use_hub_data(script.data_source)
    train_rows = data.load_alpaca_hub(limit=script.hub_train_rows) if use_hub else data.load_alpaca(
        DATA_DIR / "alpaca_train.jsonl")
    train_rows = train_rows[: script.train_rows]
    heldout_rows = data.load_alpaca(DATA_DIR / "alpaca_heldout.jsonl")[: script.eval_rows]
    heldout_chats = [data.alpaca_to_messages(r) for r in heldout_rows]

    model, tokenizer, name = distributed.load_model(ENGINE, model_args, run, config.max_length, config.seed,
                                                    config.use_cpu)
    params = models.count_parameters(model)
    trainer = SFTTrainer(
        model=model, processing_class=tokenizer, args=config,
        train_dataset=Dataset.from_list([data.alpaca_to_prompt_completion(r) for r in train_rows]),
    )

    def heldout_loss() -> float:  # the notebooks' held-out loss: answer tokens only, one pass over the held-out rows
        return evaluation.eval_loss(trainer.model, tokenizer, heldout_chats, config.max_length)

    before, after, cost, ranks = distributed.train_measured(trainer, run, heldout_loss)
    if not run.main:
        return None
    settings = {**asdict(script), **asdict(model_args), **{k: getattr(config, k) for k in SETTINGS_RECORDED}}
    return results_io.record(
        script.notebook, runtime.profile(), settings, log_history=trainer.state.log_history, cost=cost,
        folder=distributed.runs_dir(config.run_name or "sft", script.runs_dir),
        recipe="recipes/sft.py", model=name,
        launch=distributed.launch_record(run, config.per_device_train_batch_size, config.gradient_accumulation_steps),
        **ranks,
        train_data="yahma/alpaca-cleaned" if use_hub else "data/alpaca_train.jsonl",
        train_rows=len(train_rows), heldout_rows=len(heldout_rows), params=params,
        eval_loss=(before, after),
        eval_perplexity=(evaluation.perplexity(before), evaluation.perplexity(after)),
    )


SETTINGS_RECORDED = ("per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "learning_rate",
                     "warmup_steps", "lr_scheduler_type", "optim", "weight_decay", "max_length", "seed")

if __name__ == "__main__":
    parser = TrlParser((RecipeArguments, distributed.ModelArguments, SFTConfig))
    main(*parser.parse_args_and_config(distributed.command_line()))
