"""The recipes' configs (recipes/configs/*.yaml) carry their notebook's defaults, and the Accelerate configs
(recipes/accelerate/*.yaml) say what the README says they do. The notebook side is read from the notebook's own
Settings cell and trainer-config call (their literal values, before the smoke profile scales them), so a change in
either place without the other fails here."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "configs"
ACCELERATE = ROOT / "recipes" / "accelerate"

# recipe config -> (notebook, the trainer config call in it, {notebook Settings name: recipe field})
RECIPES: dict[str, tuple[str, str, dict[str, str]]] = {
    "sft_lora.yaml": ("02_lora_finetuning", "SFTConfig", {
        "LORA_R": "lora_r", "LORA_ALPHA": "lora_alpha", "LORA_DROPOUT": "lora_dropout",
        "HUB_TRAIN_ROWS": "hub_train_rows",
    }),
    "sft_full.yaml": ("01_full_finetuning", "SFTConfig", {"HUB_TRAIN_ROWS": "hub_train_rows"}),
    "dpo.yaml": ("03_dpo_alignment", "DPOConfig", {
        "LORA_R": "lora_r", "LORA_ALPHA": "lora_alpha", "TARGET_MODULES": "target_modules",
        "HUB_TRAIN_ROWS": "hub_train_rows",
    }),
    "grpo.yaml": ("04_grpo_reasoning", "GRPOConfig", {
        "LORA_R": "lora_r", "LORA_ALPHA": "lora_alpha", "TARGET_MODULES": "target_modules",
        "N_TRAIN_PROBLEMS": "n_train_problems", "N_HELDOUT": "n_heldout", "N_PASS_AT_K": "n_pass_at_k",
        "TRAIN_SEED": "train_seed", "HELDOUT_SEED": "heldout_seed", "TRAIN_LEVELS": "train_levels",
        "COLD_START_STEPS": "cold_start_steps", "COLD_START_LEARNING_RATE": "cold_start_learning_rate",
        "EVAL_TOKENS": "eval_tokens",
    }),
    "cpt_hindi.yaml": ("05_cpt_hindi", "CPTConfig", {  # 05's `train(...)` passes these through its parameters
        "LORA_R": "lora_r", "LORA_ALPHA": "lora_alpha", "TARGET_MODULES": "target_modules",
        "MODULES_TO_SAVE": "modules_to_save", "HUB_TRAIN_TEXTS": "hub_train_texts", "MAX_STEPS": "max_steps",
        "LEARNING_RATE": "learning_rate", "EMBEDDING_LEARNING_RATE": "embedding_learning_rate",
        "WARMUP_STEPS": "warmup_steps",
    }),
    "cpt_code.yaml": ("06_cpt_code", "SFTConfig", {
        "LORA_R": "lora_r", "LORA_ALPHA": "lora_alpha", "TARGET_MODULES": "target_modules",
        "N_TRAIN_FUNCTIONS": "hub_train_texts", "N_HELDOUT_FUNCTIONS": "heldout_functions",
        "EVAL_MAX_LENGTH": "eval_max_length",
    }),
}
NOT_COMPARED = {  # notebook-only trainer settings: where it writes, the in-training eval curve, the CPU switch
    "output_dir", "use_cpu", "eval_strategy", "eval_steps", "per_device_eval_batch_size",
}


def notebook_cells(notebook: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


def settings(notebook: str) -> dict[str, Any]:
    """The Settings cell's literal assignments, before `if PROFILE == "smoke":`."""
    cell = next(c for c in notebook_cells(notebook) if c.lstrip().startswith("NOTEBOOK ="))
    found: dict[str, Any] = {}
    for node in ast.parse(cell).body:
        if isinstance(node, ast.If):
            break
        if not isinstance(node, ast.Assign):
            continue
        target = node.targets[0]
        try:
            value = ast.literal_eval(node.value)
        except ValueError:
            continue  # computed (DTYPE, USE_CPU...)
        if isinstance(target, ast.Tuple):
            found.update({t.id: v for t, v in zip(target.elts, value)})
        else:
            found[target.id] = value
    return found


def config_call(notebook: str, call: str) -> dict[str, Any]:
    """The keywords of the notebook's first `call(...)` whose values are literals or Settings names."""
    known = settings(notebook)
    for cell in notebook_cells(notebook):
        for node in ast.walk(ast.parse(cell)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == call:
                found = {}
                for kw in node.keywords:
                    if isinstance(kw.value, ast.Name) and kw.value.id in known:
                        found[kw.arg] = known[kw.value.id]
                    elif isinstance(kw.value, ast.Constant):
                        found[kw.arg] = kw.value.value
                return found
    raise AssertionError(f"no {call}(...) in {notebook}")


def recipe_config(name: str) -> dict[str, Any]:
    """A recipe config's values over distributed.ModelArguments' defaults (the model fields a config leaves out)."""
    from dataclasses import asdict

    from helpers import distributed

    return {**asdict(distributed.ModelArguments()), **yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))}


def plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value  # a notebook's tuple is a YAML list


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_config_has_the_notebooks_defaults(name):
    notebook, call, renamed = RECIPES[name]
    ours = recipe_config(name)
    assert ours["notebook"] == notebook
    expected = {k: v for k, v in config_call(notebook, call).items() if k not in NOT_COMPARED}
    expected.update({field: settings(notebook)[setting] for setting, field in renamed.items()})
    assert len(expected) >= 10, expected  # the reading of the notebook found its settings
    differ = {k: (v, ours.get(k, "(missing)")) for k, v in expected.items() if ours.get(k, "(missing)") != plain(v)}
    assert not differ, f"{name} differs from {notebook} (notebook, recipe): {differ}"


def test_every_recipe_config_is_checked():
    assert {p.name for p in CONFIGS.glob("*.yaml")} == set(RECIPES)


def test_the_check_reads_values_that_differ():
    # A config with 01's learning rate under 02's name must fail the comparison above.
    notebook, call, _ = RECIPES["sft_lora.yaml"]
    assert config_call(notebook, call)["learning_rate"] == 2e-4
    assert recipe_config("sft_full.yaml")["learning_rate"] != config_call(notebook, call)["learning_rate"]


def test_grpo_cold_start_batch_is_the_notebooks():
    # 04's cold start is an SFTConfig of its own (batch 8), beside GRPOConfig
    assert config_call("04_grpo_reasoning", "SFTConfig")["per_device_train_batch_size"] == \
        recipe_config("grpo.yaml")["cold_start_batch_size"]


def test_sft_configs_differ_where_01_and_02_differ():
    full, lora = recipe_config("sft_full.yaml"), recipe_config("sft_lora.yaml")
    assert (full["lora"], lora["lora"]) == (False, True)
    assert full["dtype"] == "float32"  # notebook 01 keeps float32 weights
    assert settings("01_full_finetuning")["LEARNING_RATE"] == full["learning_rate"] == 2e-5


ACCELERATE_CONFIGS = {  # file -> (distributed_type, num_processes, use_cpu, ZeRO stage)
    "single_gpu.yaml": ("NO", 1, False, None),
    "multi_gpu.yaml": ("MULTI_GPU", 2, False, None),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 2, False, 2),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 2, False, 3),
    "cpu_2proc.yaml": ("MULTI_GPU", 2, False, None),
}


@pytest.mark.parametrize("name", sorted(ACCELERATE_CONFIGS))
def test_accelerate_configs_load_as_accelerate_reads_them(name):
    from accelerate.commands.config.config_args import load_config_from_file

    kind, processes, cpu, stage = ACCELERATE_CONFIGS[name]
    config = load_config_from_file(str(ACCELERATE / name))
    assert (str(config.distributed_type).split(".")[-1], config.num_processes, config.use_cpu) == (kind, processes, cpu)
    assert (config.deepspeed_config or {}).get("zero_stage") == stage
    text = (ACCELERATE / name).read_text(encoding="utf-8")
    assert f"accelerate launch --config_file recipes/accelerate/{name} recipes/" in text  # its launch command


def test_every_accelerate_config_is_checked():
    assert {p.name for p in ACCELERATE.glob("*.yaml")} == set(ACCELERATE_CONFIGS)


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_each_notebook_ends_with_its_scaling_up_recipe(path):
    import re

    last = json.loads(path.read_text(encoding="utf-8"))["cells"][-1]
    text = "".join(last["source"])
    assert last["cell_type"] == "markdown" and text.startswith("## Scaling up"), "the last cell is 'Scaling up'"
    scripts = set(re.findall(r"recipes/(\w+\.py)", text))
    configs = set(re.findall(r"recipes/configs/(\w+\.yaml)", text))
    launches = set(re.findall(r"--config_file recipes/accelerate/(\w+\.yaml)", text))
    assert len(scripts) == len(configs) == len(launches) == 1, (scripts, configs, launches)
    assert (ROOT / "recipes" / scripts.pop()).exists()
    assert (ACCELERATE / launches.pop()).exists()
    assert recipe_config(configs.pop())["notebook"] == path.stem  # the config of this notebook's recipe
