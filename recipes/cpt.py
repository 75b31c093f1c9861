"""Continued pre-training on raw text, notebooks 05 (Hindi: LoRA + trainable embed_tokens and lm_head copies at their
own learning rate) and 06 (Python functions: LoRA), as a script that `accelerate launch` can scale.

# One process (this machine's GPU, else its CPU): notebook 05's plain CPT run, then notebook 06's
python recipes/cpt.py --config recipes/configs/cpt_hindi.yaml
python recipes/cpt.py --config recipes/configs/cpt_code.yaml

# Every GPU of this machine, one process each (DDP); set num_processes in the file or with --num_processes
accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/cpt.py \
    --config recipes/configs/cpt_code.yaml

# DeepSpeed ZeRO-2 (pip install deepspeed first), e.g. for the 1.7B model
accelerate launch --config_file recipes/accelerate/deepspeed_zero2.yaml recipes/cpt.py \
    --config recipes/configs/cpt_code.yaml --model_name HuggingFaceTB/SmolLM2-1.7B-Instruct

# Two processes on a CPU (gloo)
accelerate launch --config_file recipes/accelerate/cpu_2proc.yaml recipes/cpt.py \
    --config recipes/configs/cpt_hindi.yaml

`--corpus hindi|code` picks the training and held-out text; the config files hold each notebook's settings (LoRA r=16;
Hindi: modules_to_save embed_tokens and lm_head, embedding_learning_rate 2e-5, lr 2e-4, cosine, no weight decay, 256
tokens; code: lr 2e-4, linear, weight decay 0.01, 512 tokens). Any field of SFTConfig (plus embedding_learning_rate), of
distributed.ModelArguments or of RecipeArguments below can be set in the YAML file or on the command line (`--max_steps
10`); the command line wins. With embedding_learning_rate set, the trainer is notebook 05's: UnslothTrainer on Unsloth
(it reads embedding_learning_rate off its arguments, so the parsed config serves it as UnslothTrainingArguments would),
helpers.plain.CPTTrainer on the plain engine; without it, TRL's SFTTrainer, as notebook 06. As in the notebooks, packing
is turned off on the plain engine without a GPU (PyTorch's attention there would let packed texts see each other).
Notebook 05's vocabulary extension (new tokens, two-stage training) stays in the notebook. When you add processes, the
effective batch (per-device batch x gradient accumulation x processes) stays the notebook's: each process accumulates
gradient_accumulation_steps (the one-process value) divided by the number of processes
(distributed.per_process_accumulation, nanoGPT's rule). Writes runs/recipes/<run_name>/results.json: the notebook's
held-out measures before and after (05: bits per char of Hindi, English and English prose, chat loss; 06: bits per byte
of held-out functions, English prose bits per char, chat loss) plus what each rank trained on."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field

import distributed  # recipes/distributed.py, beside this script

ENGINE = distributed.choose_engine()  # Unsloth where this launch fits it (one GPU, or DDP), else plain; first

from datasets import Dataset  # noqa: E402  (after the engine: Unsloth patches transformers and trl when imported)
from transformers import set_seed  # noqa: E402
from trl import SFTTrainer, TrlParser  # noqa: E402

from helpers import DATA_DIR, corpora, data, evaluation, models, plain, runtime, vocab  # noqa: E402
from helpers import results as results_io  # noqa: E402

CPTConfig = plain.CPTConfig  # SFTConfig + embedding_learning_rate (UnslothTrainingArguments' extra field)
NOTEBOOKS = {"hindi": "05_cpt_hindi", "code": "06_cpt_code"}


@dataclass
class RecipeArguments:
    """The recipe's own knobs (the model's are distributed.ModelArguments, the rest SFTConfig's and
    embedding_learning_rate)."""

    corpus: str = field(default="hindi", metadata={"help": '"hindi" (notebook 05) or "code" (notebook 06)'})
    notebook: str | None = field(default=None, metadata={"help": "the notebook this run mirrors (default: corpus's)"})
    data_source: str = field(
        default="auto",
        metadata={"help": '"auto", "hub" (Hindi Wikipedia / CodeSearchNet Python) or "local" (data/hindi_train.txt / '
                  "the standard library's functions)"},
    )
    hub_train_texts: int = field(
        default=5000,
        metadata={"help": "texts taken from the hub (Hindi paragraphs or functions); code: also the number of "
                  "standard-library functions sampled"},
    )
    train_texts: int | None = field(default=None, metadata={"help": "use only the first N training texts"})
    heldout_functions: int = field(default=60, metadata={"help": "code: held-out functions sampled"})
    eval_texts: int | None = field(default=None, metadata={"help": "score only the first N texts of each held-out set"})
    eval_max_length: int = field(default=1024, metadata={"help": "tokens: held-out texts are scored whole"})
    runs_dir: str | None = field(default=None, metadata={"help": "folder of run folders (runs/recipes)"})


def load_texts(script: RecipeArguments, seed: int) -> tuple[list[str], dict, str]:
    """(training texts, held-out sets, where the training text came from), as the notebooks' data cells load them.
    Held-out: {"hindi", "english", "english_ood", "chats"} for Hindi; {"functions", "english_ood", "chats"} for code."""
    use_hub = runtime.use_hub_data(script.data_source)
    alpaca_heldout = data.load_alpaca(DATA_DIR / "alpaca_heldout.jsonl")  # forgetting: English prose, chat answers
    heldout = {"english_ood": [row["output"] for row in alpaca_heldout],
               "chats": [data.alpaca_to_messages(row) for row in alpaca_heldout]}
    if script.corpus == "hindi":
        if use_hub:
            train, source = corpora.load_hindi_hub(script.hub_train_texts), "wikimedia/wikipedia 20231101.hi"
        else:
            train, source = corpora.load_text_lines(DATA_DIR / "hindi_train.txt", "hindi"), "data/hindi_train.txt"
        heldout["hindi"] = corpora.load_text_lines(DATA_DIR / "hindi_heldout_hi.txt", "hindi")
        heldout["english"] = corpora.load_text_lines(DATA_DIR / "hindi_heldout_en.txt", "english")
    elif script.corpus == "code":
        stdlib_train, stdlib_heldout = corpora.stdlib_functions()
        if use_hub:
            train, source = corpora.load_code_hub(script.hub_train_texts), corpora.CODE_HUB_ID
        else:
            picked = random.Random(seed).sample(stdlib_train, min(script.hub_train_texts, len(stdlib_train)))
            train, source = [f["code"] for f in picked], "python standard library"
        heldout["functions"] = random.Random(seed).sample(
            stdlib_heldout, min(script.heldout_functions, len(stdlib_heldout)))
    else:
        raise ValueError(f"--corpus must be hindi or code, not {script.corpus!r}")
    return train[: script.train_texts], {k: v[: script.eval_texts] for k, v in heldout.items()}, source


def measure(script: RecipeArguments, config: CPTConfig, model, tokenizer, heldout: dict) -> dict:
    """The notebook's held-out measures (05's `measure`; 06's bits per byte and forgetting checks)."""
    found = {}
    if script.corpus == "hindi":
        for key in ("hindi", "english"):
            found[f"{key}_bits_per_char"] = evaluation.bits_per_unit(
                model, tokenizer, heldout[key], "char", script.eval_max_length)
    else:
        scores = evaluation.text_bits(model, tokenizer, [f["code"] for f in heldout["functions"]],
                                      max_length=script.eval_max_length)
        found["heldout_bits_per_byte"] = sum(s["bits"] for s in scores) / sum(s["bytes"] for s in scores)
        found["bits_per_byte_by_function"] = [s["bits"] / s["bytes"] for s in scores]
    found["english_ood_bits_per_char"] = evaluation.bits_per_unit(
        model, tokenizer, heldout["english_ood"], "char", script.eval_max_length)
    found["chat_eval_loss"] = evaluation.eval_loss(model, tokenizer, heldout["chats"], config.max_length)
    return found


def make_trainer(model, tokenizer, config: CPTConfig, train_texts: list[str]):
    """Notebook 05's trainer when the embedding copies have their own learning rate, else notebook 06's SFTTrainer."""
    if config.embedding_learning_rate is None:
        trainer_cls = SFTTrainer
    elif ENGINE == "unsloth":
        from unsloth import UnslothTrainer as trainer_cls
    else:
        trainer_cls = plain.CPTTrainer
    return trainer_cls(model=model, processing_class=tokenizer, args=config,
                       train_dataset=Dataset.from_dict({"text": train_texts}))


def main(script: RecipeArguments, model_args: distributed.ModelArguments, config: CPTConfig) -> dict | None:
    run = distributed.launch()
    set_seed(config.seed)
    if config.packing and ENGINE == "plain" and (config.use_cpu or not runtime.has_gpu()):
        config.packing = False  # the notebooks' rule: PyTorch's attention off CUDA lets packed texts see each other
        if run.main:
            print("packing: off (plain engine without a GPU), as in the notebooks")
    train_texts, heldout, source = load_texts(script, config.seed)

    model, tokenizer, name = distributed.load_model(ENGINE, model_args, run, config.max_length, config.seed,
                                                    config.use_cpu)
    params = models.count_parameters(model)
    trainer = make_trainer(model, tokenizer, config, train_texts)

    def heldout_measures() -> dict:
        return measure(script, config, trainer.model, tokenizer, heldout)

    before, after, cost, ranks = distributed.train_measured(trainer, run, heldout_measures)
    if not run.main:
        return None
    settings = {**asdict(script), **asdict(model_args), **{k: getattr(config, k) for k in SETTINGS_RECORDED}}
    common = dict(
        log_history=trainer.state.log_history, cost=cost,
        folder=distributed.runs_dir(config.run_name or "cpt", script.runs_dir),
        recipe="recipes/cpt.py", model=name,
        launch=distributed.launch_record(run, config.per_device_train_batch_size, config.gradient_accumulation_steps),
        **ranks, train_data=source, params=params,
    )
    notebook = script.notebook or NOTEBOOKS[script.corpus]
    if script.corpus == "hindi":
        copies = vocab.embedding_copies(trainer.model) if model_args.modules_to_save else []
        return results_io.record(
            notebook, runtime.profile(), settings, **common, train_texts=len(train_texts),
            **{k: (before[k], after[k]) for k in before},
            embedding_copies={0: "none", 1: "one shared (tied) matrix"}.get(len(copies), "two separate matrices"),
        )
    functions = heldout["functions"]
    return results_io.record(
        notebook, runtime.profile(), settings, **common,
        train_functions=len(train_texts), heldout_functions=len(functions),
        heldout_bits_per_byte=(before["heldout_bits_per_byte"], after["heldout_bits_per_byte"]),
        english_ood_bits_per_char=(before["english_ood_bits_per_char"], after["english_ood_bits_per_char"]),
        chat_eval_loss=(before["chat_eval_loss"], after["chat_eval_loss"]),
        heldout_bits_per_byte_by_function=[
            {"module": f["module"], "name": f["name"], "before": round(b, 4), "after": round(a, 4)}
            for f, b, a in zip(functions, before["bits_per_byte_by_function"], after["bits_per_byte_by_function"])
        ],
    )


SETTINGS_RECORDED = ("per_device_train_batch_size", "gradient_accumulation_steps", "max_steps", "learning_rate",
                     "embedding_learning_rate", "warmup_steps", "lr_scheduler_type", "optim", "weight_decay",
                     "max_length", "packing", "seed")

if __name__ == "__main__":
    parser = TrlParser((RecipeArguments, distributed.ModelArguments, CPTConfig))
    main(*parser.parse_args_and_config(distributed.command_line()))
