"""tools/spread.py: how a variant changes a notebook's settings, and the spread table it writes."""

import json

import nbformat
import pytest

from tests.results.effects import EFFECTS
from tools import spread


def test_assignments_go_after_the_smoke_block_and_before_settings_are_recorded():
    nb = nbformat.read(spread.run_notebooks.NOTEBOOKS[0], as_version=4)
    changed = spread.with_settings(nb, ["SEED=1", "LEARNING_RATE = 0"])
    [cell] = [c for c in changed.cells if c.cell_type == "code" and spread.SETTINGS_END in c.source]
    lines = cell.source.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith(spread.SETTINGS_END))
    assert lines[end - 2:end] == ["SEED = 1", "LEARNING_RATE = 0"]
    assert next(i for i, line in enumerate(lines) if line.startswith('if PROFILE == "smoke":')) < end
    assert "set_seed(SEED)" in "\n".join(lines[end:])  # the new seed is the one set


def test_a_notebook_without_one_settings_cell_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(SystemExit, match="one Settings cell"):
        spread.with_settings(nb, ["SEED=1"])


def test_variant_names_say_seed_threads_and_kernels():
    assert spread.variant_name(3407, 2, "", []) == "seed3407-t2-native"
    assert spread.variant_name(1, 1, "AVX2", ["LEARNING_RATE=0"]) == "seed1-t1-avx2-LEARNING_RATE_0"
    assert spread.variant_name(1, 1, "", ["TARGET_MODULES=['q_proj', 'v_proj']"]) == (
        "seed1-t1-native-TARGET_MODULES_q_proj_v_proj")


def test_summarize_gives_min_max_per_effect(tmp_path):
    effect = next(e for e in EFFECTS if e.notebook == "01_full_finetuning")
    for variant, after in (("seed1-t1-native", 1.8), ("seed2-t2-avx2", 1.7)):
        path = tmp_path / variant / "01_full_finetuning" / "results.json"
        path.parent.mkdir(parents=True)
        run = {"eval_loss": {"before": 2.0, "after": after}, "settings": {"seed": 1}, "cpu": {"torch_threads": 1}}
        path.write_text(json.dumps(run), encoding="utf-8")
    [row] = [r for r in spread.summarize(tmp_path) if r["effect"] == effect.name and r["notebook"] == effect.notebook]
    assert (row["min"], row["max"]) == (0.2, 0.3) and set(row["variants"]) == {"seed1-t1-native", "seed2-t2-avx2"}
