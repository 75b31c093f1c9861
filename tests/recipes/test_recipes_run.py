"""Every recipe runs end to end in one process for a few steps, on its own config with CPU-sized overrides, and writes
the notebook's results.json with the notebook's before/after measures. (Whether they learn is the notebooks' tests'
business: here the steps are too few.) Run by ./setup_venv.sh test-recipes."""

from __future__ import annotations

import sys

import pytest

from tests.recipes.test_scale_out import launch

TINY = ["--max_steps", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1"]
RUNS = {  # name -> (script, config, overrides, the before/after measures its results.json must hold)
    "sft_full": ("sft.py", "sft_full.yaml", TINY + ["--max_length", "256", "--train_rows", "16", "--eval_rows", "4"],
                 ["eval_loss"]),
    "dpo": ("dpo.py", "dpo.yaml", TINY + ["--max_length", "256", "--train_rows", "16", "--eval_pairs", "4"],
            ["heldout_reward_accuracy", "heldout_reward_margin"]),
    "grpo": ("grpo.py", "grpo.yaml",
             ["--max_steps", "2", "--num_generations", "2", "--per_device_train_batch_size", "2",
              "--gradient_accumulation_steps", "1", "--max_completion_length", "16", "--cold_start_steps", "2",
              "--cold_start_batch_size", "2", "--n_train_problems", "50", "--n_heldout", "4", "--n_pass_at_k", "2",
              "--eval_tokens", "16"],
             ["heldout_accuracy", "grpo_heldout_accuracy"]),
    "cpt_hindi": ("cpt.py", "cpt_hindi.yaml", TINY + ["--train_texts", "32", "--eval_texts", "4"],
                  ["hindi_bits_per_char", "english_bits_per_char", "chat_eval_loss"]),
    "cpt_code": ("cpt.py", "cpt_code.yaml", TINY + ["--train_texts", "32", "--eval_texts", "4",
                                                    "--heldout_functions", "4"],
                 ["heldout_bits_per_byte", "english_ood_bits_per_char", "chat_eval_loss"]),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_recipe_runs_and_records_the_notebooks_measures(name, tmp_path):
    script, config, overrides, measures = RUNS[name]
    command = [sys.executable, f"recipes/{script}", "--config", f"recipes/configs/{config}", *overrides]
    run = launch(command, tmp_path, name)
    assert run["recipe"] == f"recipes/{script}" and run["engine"] == "plain"
    assert run["launch"]["kind"] == "single" and run["launch"]["processes"] == 1
    assert run["steps"] == 2
    for key in measures:
        assert set(run[key]) == {"before", "after"}, key
        assert all(isinstance(v, float) for v in run[key].values()), (key, run[key])
    if name == "sft_full":  # lora false: every weight trains
        assert run["params"]["trainable"] == run["params"]["total"]
    if name == "cpt_hindi":
        assert run["embedding_copies"] == "two separate matrices"  # embed_tokens and lm_head, trained whole
