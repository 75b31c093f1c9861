"""tools/spread.py: how a variant changes a notebook's settings, and the spread table it writes."""

import json

from tools import spread
from tools.effects import EFFECTS


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
