"""Checks of what the notebooks measured (runs/<notebook>/results.json), run after nbval has executed them.

These read the files the smoke run just wrote; run `./setup_venv.sh test` (or pytest) so that the notebooks run first.
"""

import math

import pytest

from helpers import results

NOTEBOOKS = ["01_full_finetuning", "02_lora_finetuning", "03_dpo_alignment", "04_grpo_reasoning", "05_cpt_hindi", "06_cpt_code"]


def load(name):
    run = results.load_results(name)
    assert run is not None, f"{results.runs_root() / name / 'results.json'} is missing: run the notebooks first (./setup_venv.sh test does)"
    return run


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_notebook_wrote_its_results_and_plots(name):
    run = load(name)
    assert run["notebook"] == name and run["profile"] in ("smoke", "full")
    assert run["steps"] > 0 and run["train"]["seconds"] > 0 and run["train"]["peak_memory_mb"] > 0
    assert list((results.runs_root() / name).glob("*.png")), "no plot saved beside results.json"
    for metric in results.headline_metrics(run).values():
        assert isinstance(metric["before"], float | int) and isinstance(metric["after"], float | int)


def test_01_full_finetuning_trains_everything_and_lowers_heldout_loss():
    run = load("01_full_finetuning")
    assert run["params"]["trainable_percent"] == 100.0
    assert run["eval_loss"]["after"] < run["eval_loss"]["before"]


def test_02_lora_trains_a_few_percent_and_lowers_heldout_loss():
    run = load("02_lora_finetuning")
    assert 0 < run["params"]["trainable_percent"] < 5
    assert run["eval_loss"]["after"] < run["eval_loss"]["before"]
    assert (results.runs_root() / "02_lora_finetuning" / "adapter" / "adapter_model.safetensors").exists()
    assert (results.runs_root() / "02_lora_finetuning" / "merged_16bit").is_dir()


def test_03_dpo_prefers_chosen_answers_more_after_training():
    run = load("03_dpo_alignment")
    assert run["heldout_reward_accuracy"]["before"] == 0.5 and run["heldout_reward_margin"]["before"] == 0.0  # policy == reference
    assert run["heldout_reward_margin"]["after"] > run["heldout_reward_margin"]["before"]
    assert run["heldout_reward_accuracy"]["after"] > run["heldout_reward_accuracy"]["before"]
    by_kind = run["heldout_by_kind"]
    assert set(by_kind) <= {"correct-vs-wrong", "concise-vs-padded", "helpful-vs-evasive", "format"} and len(by_kind) >= 3
    assert sum(kind["pairs"] for kind in by_kind.values()) == run["heldout_pairs"]
    assert by_kind["concise-vs-padded"]["shorter_answer_accuracy"] == 1.0  # length alone gives these away
    assert by_kind["helpful-vs-evasive"]["shorter_answer_accuracy"] <= 0.5  # ... and not these


def test_04_cold_start_teaches_the_format_and_grpo_moves_the_adapter():
    run = load("04_grpo_reasoning")
    # the SFT cold start is what gives GRPO non-zero rewards: it must teach the format
    assert run["after_cold_start"]["heldout_format_rate"] > run["heldout_format_rate"]["before"]
    # GRPO itself must do something: the adapter moved, and at least one step had a group with different rewards
    assert run["grpo_weight_change"] > 1e-4, "GRPO did not move the LoRA weights"
    assert run["steps_with_reward_signal"] >= 1, "every GRPO group scored the same: no step had a gradient"
    headroom = run["after_cold_start"]["pass_at_k"]
    assert headroom["pass_at_k"] >= headroom["mean_success"]  # any-of-k is at least the average sample
    assert run["grpo_gain"] == round(run["heldout_accuracy"]["after"] - run["after_cold_start"]["heldout_accuracy"], 4)
    assert {"completion", "format", "correctness", "partial"} <= set(run["samples"][0])


def test_05_hindi_bits_per_char_fall_and_reload_is_identical():
    run = load("05_cpt_hindi")
    assert run["hindi_bits_per_char"]["after"] < run["hindi_bits_per_char"]["before"]
    assert run["extended_vocab"]["hindi_bits_per_char"]["after"] < run["extended_vocab"]["hindi_bits_per_char"]["before"]
    assert run["fertility"]["extended"]["hindi"]["tokens_per_word"] < run["fertility"]["base"]["hindi"]["tokens_per_word"]
    assert run["fertility"]["extended"]["english"] == run["fertility"]["base"]["english"]
    assert run["extended_vocab"]["english_ids_unchanged"] is True
    assert run["reload_identical"] == {"plain": True, "extended": True}
    # EEVE stage 1 trained the new rows and left every old row exactly as it was
    stage1 = run["extended_vocab"]["stage1"]
    assert stage1["old_rows_unchanged"] is True and stage1["new_rows_change"] > 0 and stage1["steps"] == run["settings"]["stage1_steps"]
    assert run["extended_vocab"]["steps"] == run["steps"]  # equal optimizer steps for the two runs
    # the probe checks are computed on the continuations the notebook saved
    from helpers import generation

    for side in ("before", "after", "extended_after"):
        probes = run["probes"][side]
        assert [generation.loop_check(t) for t in probes["sampled"]] == probes["checks"]
        assert [generation.loop_check(t) for t in probes["greedy"]] == probes["greedy_checks"]
    assert run["probe_passes"]["CPT"] == sum(c["passes"] for c in run["probes"]["after"]["checks"])
    assert run["greedy_probe_passes"]["CPT"] == sum(c["passes"] for c in run["probes"]["after"]["greedy_checks"])
    speed = run["generation_chars_per_second"]
    assert all(s["chars"] > 0 and s["chars_per_second"] > 0 for s in speed.values())
    # Forgetting is measured on text the training data does not hold (no direction is claimed: it may go either way).
    for measured in (run, run["extended_vocab"]):
        for key in ("english_ood_bits_per_char", "chat_eval_loss"):
            assert all(math.isfinite(v) and v > 0 for v in measured[key].values()), key


def test_06_code_bits_per_byte_fall_and_reload_is_identical():
    run = load("06_cpt_code")
    assert run["heldout_bits_per_byte"]["after"] < run["heldout_bits_per_byte"]["before"]
    # The body rate is computed on the generated code itself: recompute it from the completions the notebook saved.
    from helpers import corpora

    completions = run["completions"]
    assert completions and all(any(c[f"generated_{side}"].strip() for c in completions) for side in ("before", "after"))
    for side in ("before", "after"):
        rate = sum(corpora.has_body(c["prompt"] + c[side]) for c in completions) / len(completions)
        assert abs(rate - run["completion_body_rate"][side]) < 1e-3, side
    assert run["reload_identical"] is True
    # next-line exact match, recomputed from the generated lines the notebook saved
    tasks = run["next_line_tasks"]
    assert tasks and all(t["target"] for t in tasks) and any(t["before"] for t in tasks) and any(t["after"] for t in tasks)
    for side in ("before", "after"):
        rate = sum(t[side] == t["target"] for t in tasks) / len(tasks)
        assert abs(rate - run["next_line_exact_match"][side]) < 1e-3, side
    for key in ("english_ood_bits_per_char", "chat_eval_loss"):
        assert all(math.isfinite(v) and v > 0 for v in run[key].values()), key
