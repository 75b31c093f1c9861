"""recipes/configs/*.yaml, generated from the notebooks: each config takes its notebook's Settings cell and trainer
config call (their literal values, before the smoke profile scales them), so the notebook is the one home of every
setting. `tools/sync_notebooks.py` writes them with the notebooks' generated cells (and checks them with `--check`).

What is here and not in a notebook: which notebook and call a config reads, how a Settings name is called in the
recipe, the recipe's own fields (where it writes, DDP's flag, ...) and the comments.
"""

from __future__ import annotations

import ast
import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
NOT_TAKEN = {  # notebook-only trainer settings: where it writes, the in-training eval curve, the CPU switch
    "output_dir", "use_cpu", "eval_strategy", "eval_steps", "per_device_eval_batch_size",
}
DDP = {"ddp_find_unused_parameters": False}  # under DDP every trainable weight gets a gradient each step
COMMENTS = {  # shared by every config that has the field
    "ddp_find_unused_parameters": "under DDP: every trainable weight gets a gradient each step",
    "packing": "turned off on the plain engine without a GPU, as in the notebook",
}


@dataclass(frozen=True)
class Recipe:
    notebook: str
    call: str  # the notebook's trainer-config call the config takes its keywords from
    about: str  # the header's first line(s), after "Notebook NN's recipe"
    command: str  # how to run it
    unit: str  # what the effective batch counts
    own: dict[str, Any] = field(default_factory=dict)  # the recipe's fields before the notebook's
    settings: dict[str, str] = field(default_factory=dict)  # notebook Settings name -> recipe field
    calls: dict[str, tuple[str, str]] = field(default_factory=dict)  # recipe field -> (another call, its keyword)
    comments: dict[str, str] = field(default_factory=dict)


LORA = {"LORA_R": "lora_r", "LORA_ALPHA": "lora_alpha", "TARGET_MODULES": "target_modules"}
BIGGER = "   (add --model_name HuggingFaceTB/SmolLM2-1.7B-Instruct)"
RECIPES: dict[str, Recipe] = {
    "sft_full": Recipe(
        "01_full_finetuning", "SFTConfig", "every weight trained", "recipes/sft.py" + BIGGER, "rows",
        own={"lora": False, "dtype": "float32"}, settings={"HUB_TRAIN_ROWS": "hub_train_rows"},
        comments={"dtype": "notebook 01 keeps float32 weights"},
    ),
    "sft_lora": Recipe(
        "02_lora_finetuning", "SFTConfig", "LoRA on SmolLM2-135M-Instruct", "recipes/sft.py" + BIGGER, "rows",
        own={"lora": True},
        settings={"LORA_R": "lora_r", "LORA_ALPHA": "lora_alpha", "LORA_DROPOUT": "lora_dropout",
                  "HUB_TRAIN_ROWS": "hub_train_rows"},
    ),
    "dpo": Recipe(
        "03_dpo_alignment", "DPOConfig", "DPO with LoRA", "recipes/dpo.py" + BIGGER, "pairs",
        settings={**LORA, "HUB_TRAIN_ROWS": "hub_train_rows"},
        comments={"hub_train_rows": "pairs from Intel/orca_dpo_pairs; offline: data/dpo_train.jsonl",
                  "max_length": "prompt + answer tokens"},
    ),
    "grpo": Recipe(
        "04_grpo_reasoning", "GRPOConfig", "a supervised cold start on worked solutions, then GRPO with LoRA",
        "recipes/grpo.py" + BIGGER, "completions",
        own={"max_seq_length": 512},
        settings={**LORA, "N_TRAIN_PROBLEMS": "n_train_problems", "N_HELDOUT": "n_heldout",
                  "N_PASS_AT_K": "n_pass_at_k", "TRAIN_SEED": "train_seed", "HELDOUT_SEED": "heldout_seed",
                  "TRAIN_LEVELS": "train_levels", "COLD_START_STEPS": "cold_start_steps",
                  "COLD_START_LEARNING_RATE": "cold_start_learning_rate", "EVAL_TOKENS": "eval_tokens"},
        calls={"cold_start_batch_size": ("SFTConfig", "per_device_train_batch_size")},
        comments={"n_heldout": "the notebook also trains an SFT control; the recipe does not",
                  "n_pass_at_k": "held-out problems sampled num_generations times after the cold start (0: skip)",
                  "heldout_seed": "held-out questions are also excluded from training",
                  "train_levels": "what GRPO trains on (the cold start uses all levels)",
                  "cold_start_batch_size": "per process",
                  "per_device_train_batch_size": "completions per device step (1 prompt x num_generations)"},
    ),
    "cpt_hindi": Recipe(
        "05_cpt_hindi", "CPTConfig",
        "plain CPT, LoRA plus trainable embed_tokens and lm_head copies at their own learning rate (the vocabulary "
        "extension stays in the notebook)", "recipes/cpt.py", "documents",
        own={"corpus": "hindi"},
        settings={**LORA, "MODULES_TO_SAVE": "modules_to_save", "HUB_TRAIN_TEXTS": "hub_train_texts",
                  "MAX_STEPS": "max_steps", "LEARNING_RATE": "learning_rate",
                  "EMBEDDING_LEARNING_RATE": "embedding_learning_rate", "WARMUP_STEPS": "warmup_steps"},
        comments={"hub_train_texts": "Hindi Wikipedia paragraphs; offline: data/hindi_train.txt",
                  "embedding_learning_rate": "the embed_tokens / lm_head copies"},
    ),
    "cpt_code": Recipe(
        "06_cpt_code", "SFTConfig", "LoRA on whole Python functions", "recipes/cpt.py", "rows",
        own={"corpus": "code"},
        settings={**LORA, "N_TRAIN_FUNCTIONS": "hub_train_texts", "N_HELDOUT_FUNCTIONS": "heldout_functions",
                  "EVAL_MAX_LENGTH": "eval_max_length"},
        comments={"hub_train_texts": "functions: from CodeSearchNet (Python) on the hub, else the standard library",
                  "heldout_functions": "from standard-library modules never trained on",
                  "eval_max_length": "every held-out function is scored whole"},
    ),
}


def code_cells(notebook: str, root: Path = ROOT) -> list[str]:
    nb = json.loads((root / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def settings(notebook: str, root: Path = ROOT) -> dict[str, Any]:
    """The Settings cell's literal assignments, before `if PROFILE == "smoke":`."""
    cell = next(c for c in code_cells(notebook, root) if c.lstrip().startswith("NOTEBOOK ="))
    found: dict[str, Any] = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.If):
            break
        if not isinstance(node, ast.Assign):
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue  # computed (DTYPE, USE_CPU...)
        target = node.targets[0]
        if isinstance(target, ast.Tuple):
            found.update({t.id: v for t, v in zip(target.elts, value)})
        else:
            found[target.id] = value
    return found


def config_call(notebook: str, call: str, root: Path = ROOT) -> dict[str, Any]:
    """The keywords of the notebook's first `call(...)` whose values are literals or Settings names."""
    known = settings(notebook, root)
    for cell in code_cells(notebook, root):
        for node in ast.walk(ast.parse(cell)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == call:
                found = {}
                for kw in node.keywords:
                    if isinstance(kw.value, ast.Name) and kw.value.id in known:
                        found[kw.arg] = known[kw.value.id]
                    elif isinstance(kw.value, ast.Constant):
                        found[kw.arg] = kw.value.value
                return found
    raise ValueError(f"no {call}(...) in {notebook}")


def values(name: str, root: Path = ROOT) -> dict[str, Any]:
    """A config's fields in the order the file lists them."""
    recipe = RECIPES[name]
    known = settings(recipe.notebook, root)
    taken = {k: v for k, v in config_call(recipe.notebook, recipe.call, root).items() if k not in NOT_TAKEN}
    fields: dict[str, Any] = {"notebook": recipe.notebook, "run_name": name, **recipe.own}
    fields.update({field_: known[setting] for setting, field_ in recipe.settings.items()})
    fields.update({f: config_call(recipe.notebook, call, root)[kw] for f, (call, kw) in recipe.calls.items()})
    fields["output_dir"] = f"runs/recipes/{name}/checkpoints"
    fields.update({k: v for k, v in taken.items() if k not in fields})
    tail = {k: fields.pop(k) for k in ("logging_steps", "save_strategy", "report_to", "seed") if k in fields}
    return {**fields, **DDP, **tail}


def scalar(value: Any) -> str:
    """One YAML value as a person would write it: 2.0e-4, not 0.0002; lists in brackets; "no" quoted."""
    if isinstance(value, float) and value and abs(value) < 1e-2:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def render(name: str, root: Path = ROOT) -> str:
    recipe = RECIPES[name]
    fields = values(name, root)
    per_step = fields["per_device_train_batch_size"] * fields["gradient_accumulation_steps"]
    comments = {**COMMENTS, **recipe.comments,
                "run_name": f"runs/recipes/{name}/results.json",
                "gradient_accumulation_steps": f"{per_step} {recipe.unit} per optimizer step on one process; each of "
                                               f"N processes takes {fields['gradient_accumulation_steps']} / N"}
    lines = [f"# Generated by tools/sync_notebooks.py from notebook {recipe.notebook[:2]}'s Settings and {recipe.call} "
             "cells: do not edit by hand.",
             *textwrap.wrap(f"Notebook {recipe.notebook[:2]}'s recipe: {recipe.about}.", 116, initial_indent="# ",
                            subsequent_indent="# "),
             f"# python {recipe.command.split()[0]} --config recipes/configs/{name}.yaml"
             + recipe.command[len(recipe.command.split()[0]):]]
    for key, value in fields.items():
        note = f"   # {comments[key]}" if key in comments else ""
        lines.append(f"{key}: {scalar(value)}{note}")
    return "\n".join(lines) + "\n"


def sync(check: bool = False, root: Path = ROOT) -> list[str]:
    """Rewrite (or, with check=True, only compare) recipes/configs/*.yaml; returns the stale files' names."""
    stale = []
    for name in RECIPES:
        path = root / "recipes" / "configs" / f"{name}.yaml"
        text = render(name, root)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check:
                path.write_text(text, encoding="utf-8")
    return stale
