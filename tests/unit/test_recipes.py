"""The recipes' configs (recipes/configs/*.yaml) are generated from their notebook's Settings cell and trainer-config
call (tools/recipe_configs.py) and current, and the Accelerate configs (recipes/accelerate/*.yaml) say what the README
says they do."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import recipe_configs

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "recipes" / "configs"
ACCELERATE = ROOT / "recipes" / "accelerate"

def recipe_config(name: str) -> dict[str, Any]:
    """A recipe config's values over distributed.ModelArguments' defaults (the model fields a config leaves out)."""
    from dataclasses import asdict

    from recipes import distributed

    return {**asdict(distributed.ModelArguments()), **yaml.safe_load((CONFIGS / name).read_text(encoding="utf-8"))}


def test_every_recipe_config_is_generated_from_its_notebook_and_current():
    assert {p.stem for p in CONFIGS.glob("*.yaml")} == set(recipe_configs.RECIPES)
    assert recipe_configs.sync(check=True) == [], "run: python -m tools.sync_notebooks"


@pytest.mark.parametrize("name", sorted(recipe_configs.RECIPES))
def test_a_config_holds_its_notebooks_values(name):
    recipe = recipe_configs.RECIPES[name]
    ours = recipe_config(f"{name}.yaml")
    assert ours["notebook"] == recipe.notebook
    call = recipe_configs.config_call(recipe.notebook, recipe.call)
    known = recipe_configs.settings(recipe.notebook)
    assert len(call) >= 8 and len(known) >= 10  # the reading found the notebook's settings
    expected = {k: v for k, v in call.items() if k not in recipe_configs.NOT_TAKEN}
    expected.update({f: known[setting] for setting, f in recipe.settings.items()})
    expected = {k: list(v) if isinstance(v, tuple) else v for k, v in expected.items()}
    differ = {k: (v, ours.get(k)) for k, v in expected.items() if ours.get(k) != v}
    assert not differ, f"{name} differs from {recipe.notebook} (notebook, recipe): {differ}"


def test_a_changed_notebook_setting_makes_its_config_stale(tmp_path):
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    shutil.copytree(CONFIGS, tmp_path / "recipes" / "configs")
    path = tmp_path / "notebooks" / "02_lora_finetuning.ipynb"
    text = path.read_text(encoding="utf-8")
    assert text.count("LEARNING_RATE = 2e-4") == 1
    path.write_text(text.replace("LEARNING_RATE = 2e-4", "LEARNING_RATE = 3e-4"), encoding="utf-8")
    assert recipe_configs.sync(check=True, root=tmp_path) == ["sft_lora.yaml"]
    assert recipe_configs.sync(root=tmp_path) == ["sft_lora.yaml"]
    written = yaml.safe_load((tmp_path / "recipes" / "configs" / "sft_lora.yaml").read_text(encoding="utf-8"))
    assert written["learning_rate"] == 3e-4 and written["lora_r"] == 16


def test_values_are_written_as_yaml_reads_them():
    for value in (2e-4, 1e-3, 2e-5, 0.01, 0.0, 1.0, 16, True, "no", "none", "<|endoftext|>", ["q_proj"], (2, 3)):
        expected = list(value) if isinstance(value, tuple) else value
        assert yaml.safe_load(f"x: {recipe_configs.scalar(value)}")["x"] == expected
    assert recipe_configs.scalar(2e-4) == "2.0e-4" and recipe_configs.scalar([2, 3]) == "[2, 3]"


def test_sft_configs_differ_where_01_and_02_differ():
    full, lora = recipe_config("sft_full.yaml"), recipe_config("sft_lora.yaml")
    assert (full["lora"], lora["lora"]) == (False, True)
    assert full["dtype"] == "float32"  # notebook 01 keeps float32 weights
    assert recipe_configs.settings("01_full_finetuning")["LEARNING_RATE"] == full["learning_rate"] == 2e-5
    assert lora["learning_rate"] == 2e-4


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
