"""Checks of what the notebooks measured (runs/<notebook>/results.json), run after nbval has executed them.

These read the files the smoke run just wrote; run `./setup_venv.sh test` (or pytest) so that the notebooks run first.
A results.json (or plot, or saved adapter) written before this test session started is refused: it is from an
earlier run and says nothing about the code as it is now.

Two kinds of check. Exact ones (parameter counts, recomputed rates, reloads that must match) hold on any machine.
Effect sizes (a loss that must fall, forgetting that must stay small) differ between CPUs, thread counts and seeds
from the first step, so their bounds live in tools/effects.py, each outside the spread measured across seeds
and kernel paths (data/reference/spread/smoke-cpu.json; tests/unit/test_effects.py keeps them there).
"""

import os
from pathlib import Path

import pytest

from helpers import engine, results
from tools.effects import EFFECTS

NOTEBOOKS = [
    "01_full_finetuning", "02_lora_finetuning", "03_dpo_alignment", "04_grpo_reasoning", "05_cpt_hindi", "06_cpt_code",
]
# The notebooks this session ran: all six, or those SMOL_CHECK_NOTEBOOKS names (./setup_venv.sh test-plain runs 02
# and 05 on the plain engine); the checks of the others are skipped, not passed.
CHECKED = os.environ.get("SMOL_CHECK_NOTEBOOKS", "").split() or NOTEBOOKS

# SmolLM2-135M's shape (config.json of HuggingFaceTB/SmolLM2-135M-Instruct): 30 layers, hidden 576, MLP 1536,
# 9 query heads and 3 key/value heads of 64, a 49,152-token vocabulary, input and output embeddings tied.
LAYERS, HIDDEN, INTERMEDIATE, VOCAB = 30, 576, 1536, 49152
Q, KV = 9 * 64, 3 * 64
PROJECTIONS = {  # (in, out) features of each linear layer of one decoder layer
    "q_proj": (HIDDEN, Q), "k_proj": (HIDDEN, KV), "v_proj": (HIDDEN, KV), "o_proj": (Q, HIDDEN),
    "gate_proj": (HIDDEN, INTERMEDIATE), "up_proj": (HIDDEN, INTERMEDIATE), "down_proj": (INTERMEDIATE, HIDDEN),
}
# embeddings (once: tied) + per layer the seven projections and two RMSNorm weights + the final norm
BASE_PARAMS = VOCAB * HIDDEN + LAYERS * (sum(i * o for i, o in PROJECTIONS.values()) + 2 * HIDDEN) + HIDDEN
SEVEN = list(PROJECTIONS)


def lora_params(r, target_modules):
    """LoRA adds A (r x in) and B (out x r) to each targeted projection of every layer: r * (in + out) weights."""
    return LAYERS * sum(r * sum(PROJECTIONS[name]) for name in target_modules)


def test_the_parameter_arithmetic_matches_the_published_counts():
    # The arithmetic the checks below rely on: SmolLM2-135M has 134,515,008 weights; r=16 LoRA on the seven
    # projections adds 4,884,480 (30 * 16 * 10,176), 3.504% of the adapted model.
    assert BASE_PARAMS == 134_515_008
    assert lora_params(16, SEVEN) == 4_884_480
    assert round(100 * lora_params(16, SEVEN) / (BASE_PARAMS + lora_params(16, SEVEN)), 3) == 3.504


@pytest.fixture
def load(session_started):
    """load(name): runs/<name>/results.json, refused when it is missing or older than this test session."""

    def load_fresh(name):
        if name not in CHECKED:
            pytest.skip(f"{name} did not run in this session (SMOL_CHECK_NOTEBOOKS={' '.join(CHECKED)})")
        path = results.runs_root() / name / "results.json"
        assert path.exists(), f"{path} is missing: run the notebooks first (./setup_venv.sh test does)"
        assert_fresh(path, session_started)
        run = results.load_results(name)
        assert run is not None
        return run

    return load_fresh


def assert_fresh(path: Path, session_started: float) -> None:
    """Fail when `path` was last written before this session started (1 s of slack for coarse file clocks)."""
    assert path.stat().st_mtime >= session_started - 1.0, (
        f"{path} was written before this test session started: it is from an earlier run; "
        "run the notebooks first (./setup_venv.sh test)"
    )


def assert_lora_counts(run, extra=0):
    """The trainable count is exactly the LoRA arithmetic of the series' teaching setting, r=16 on all seven
    projections (+ `extra`), and it matches the run's own recorded r and target modules. Catches adapters on the
    wrong (or too few) modules or layers, e.g. the MLP projections dropped (1,843,200 instead of 4,884,480), a
    different rank, and base weights left trainable."""
    settings = run["settings"]
    assert (settings["lora_r"], list(settings["target_modules"])) == (16, SEVEN), "not the taught LoRA setting"
    adapters = lora_params(settings["lora_r"], settings["target_modules"])
    assert adapters == lora_params(16, SEVEN) == 4_884_480
    assert run["params"]["trainable"] == adapters + extra
    assert run["params"]["total"] == BASE_PARAMS + adapters + extra


def test_the_notebooks_asked_for_exist():
    unknown = set(CHECKED) - set(NOTEBOOKS)
    assert not unknown, f"SMOL_CHECK_NOTEBOOKS names notebooks that do not exist: {sorted(unknown)}"


def expected_engine() -> str:
    """The engine the notebooks' kernels should have chosen here: SMOL_ENGINE=plain, or Unsloth where it can run."""
    if engine.requested() == "plain" or engine.unsloth_blocker() is not None:
        return "plain"
    return "unsloth"


@pytest.mark.parametrize("name", CHECKED)
def test_every_notebook_ran_on_the_engine_asked_for(name, load):
    # The plain engine's runs must never have imported Unsloth (it patches transformers, PEFT and TRL on import, so
    # a plain run with it loaded would not be plain); Unsloth's runs must have it.
    run = load(name)
    want = expected_engine()
    assert (run["engine"], run["unsloth_imported"]) == (want, want == "unsloth"), run.get("engine")
    assert run["settings"]["engine"] == want


@pytest.mark.parametrize("name", CHECKED)
def test_every_notebook_wrote_its_results_and_plots(name, load, session_started):
    run = load(name)
    assert run["notebook"] == name and run["profile"] in ("smoke", "full")
    # peak memory holds at least the 135M weights (270 MB in 16-bit; smallest reference: 1,903 MB of CPU RSS):
    # catches a memory figure that is zero or in the wrong unit
    assert run["steps"] > 0 and run["train"]["seconds"] > 0 and run["train"]["peak_memory_mb"] > 200
    # a plot saved by this run (an older one left in the folder does not count)
    plots = [p for p in (results.runs_root() / name).glob("*.png") if p.stat().st_mtime >= session_started - 1.0]
    assert plots, "no plot saved beside results.json in this run"
    for metric in results.headline_metrics(run).values():
        assert isinstance(metric["before"], float | int) and isinstance(metric["after"], float | int)


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: f"{e.notebook[:2]} {e.name}")
def test_each_effect_lies_beyond_the_spread_measured_across_seeds_and_cpus(effect, load):
    # The bound of each effect (tools/effects.py) is outside the spread of data/reference/spread/: a zero
    # learning rate, frozen weights or a lost adapter fail it, a correct run on another CPU does not.
    run = load(effect.notebook)
    assert effect.holds(run), effect.explain(run)


def assert_facts_recomputed(run):
    """The fact verdicts and their paired counts, recomputed from the answers the notebook saved."""
    from helpers import data, evaluation, paired

    facts = data.load_facts(data.DATA_DIR / "facts_heldout.jsonl")[: run["settings"]["n_facts"]]
    saved = run["facts"]
    assert [f["question"] for f in saved] == [f["question"] for f in facts]
    for side in ("before", "after"):
        assert [evaluation.answer_is_right(s[side], f["answers"]) for s, f in zip(saved, facts)] == [
            s[f"right_{side}"] for s in saved], side
    flips = paired.flips([s["right_before"] for s in saved], [s["right_after"] for s in saved])
    assert run["fact_flips"] == flips
    assert run["fact_accuracy"] == results.before_after(flips["right_before"] / len(facts),
                                                        flips["right_after"] / len(facts))


def test_01_full_finetuning_trains_everything(load):
    run = load("01_full_finetuning")
    assert_facts_recomputed(run)
    # every weight trains: exactly SmolLM2-135M's 134,515,008 (tied embeddings once)
    assert run["params"]["trainable"] == run["params"]["total"] == BASE_PARAMS
    assert run["params"]["trainable_percent"] == 100.0


def test_02_lora_trains_exactly_the_adapters_and_saves_them(load, session_started):
    run = load("02_lora_finetuning")
    assert_facts_recomputed(run)
    assert_lora_counts(run)  # r=16 on the seven projections: 4,884,480 of 139,399,488 (3.504%)
    assert run["params"]["trainable_percent"] == round(100 * run["params"]["trainable"] / run["params"]["total"], 3)
    out = results.runs_root() / "02_lora_finetuning"
    assert_fresh(out / "adapter" / "adapter_model.safetensors", session_started)  # saved by this run, not an old one
    merged = sorted((out / "merged_16bit").glob("*.safetensors"))
    assert merged, "no merged 16-bit model saved"
    for path in merged:
        assert_fresh(path, session_started)


def test_03_dpo_starts_from_ties_and_scores_every_kind(load):
    run = load("03_dpo_alignment")
    assert_lora_counts(run)
    # policy == reference before training: every pair ties
    assert run["heldout_reward_accuracy"]["before"] == 0.5 and run["heldout_reward_margin"]["before"] == 0.0
    by_kind = run["heldout_by_kind"]
    assert set(by_kind) <= {"correct-vs-wrong", "concise-vs-padded", "helpful-vs-evasive", "format"}
    assert len(by_kind) >= 3
    assert sum(kind["pairs"] for kind in by_kind.values()) == run["heldout_pairs"]
    assert by_kind["concise-vs-padded"]["shorter_answer_accuracy"] == 1.0  # length alone gives these away
    assert by_kind["helpful-vs-evasive"]["shorter_answer_accuracy"] <= 0.5  # ... and not these


def test_04_grpo_records_consistent_scores(load):
    # The cold start's format gain, GRPO's weight change and its steps with a reward signal are effects (above).
    # Accuracy on the smoke profile's 16 problems is not checked: one problem is 6 points, and it moved from 3 to 1
    # correct between two CPUs with the same seed (issue 23).
    run = load("04_grpo_reasoning")
    assert_lora_counts(run)
    headroom = run["after_cold_start"]["pass_at_k"]
    assert headroom["pass_at_k"] >= headroom["mean_success"]  # any-of-k is at least the average sample
    assert {"completion", "format", "correctness", "partial"} <= set(run["samples"][0])
    assert "rft" in run, "the notebook records the checker-only baseline (section 10)"
    assert_grpo_scores_recomputed(run)


def assert_grpo_scores_recomputed(run):
    """04's accuracies and paired flips (cold start -> GRPO, cold start -> SFT control, control -> GRPO, and where the
    run has it cold start -> RFT and RFT -> GRPO), recomputed from the per-problem record in its results.json (a run,
    or a committed reference); the SFT control and RFT trained on about as many completion tokens as GRPO (within one
    step's worth). References from before the RFT cell have no "rft"."""
    from helpers import paired

    n = run["heldout_problems"]
    stages = {"base", "cold_start", "grpo", "sft_control"} | ({"rft"} if "rft" in run else set())
    assert set(run["heldout_right"]) == stages
    assert all(len(answers) == n and set(answers) <= {"0", "1"} for answers in run["heldout_right"].values())
    right = {stage: [answer == "1" for answer in answers] for stage, answers in run["heldout_right"].items()}
    control = run["sft_control"]
    for stage, accuracy in (("base", run["heldout_accuracy"]["before"]), ("grpo", run["heldout_accuracy"]["after"]),
                            ("cold_start", run["after_cold_start"]["heldout_accuracy"]),
                            ("sft_control", control["heldout_accuracy"])):
        assert round(sum(right[stage]) / n, 4) == round(accuracy, 4), stage
    # from the counts, not the rounded accuracies (on 800 problems 0.51875 is recorded as 0.5188)
    assert run["grpo_gain"] == round((sum(right["grpo"]) - sum(right["cold_start"])) / n, 4)
    assert run["grpo_flips"] == paired.flips(right["cold_start"], right["grpo"])
    assert control["flips"] == paired.flips(right["cold_start"], right["sft_control"])
    assert control["grpo_vs_control"] == paired.flips(right["sft_control"], right["grpo"])
    assert_grpo_tokens_matched(control["steps"], control["solution_tokens"], control["grpo_completion_tokens"])
    if "rft" in run:
        assert_rft_recomputed(run, right)


def assert_rft_recomputed(run, right):
    """The checker-only baseline: as many prompts as GRPO sampled, NUM_GENERATIONS samples each, the kept ones at most
    that, and SFT steps that make GRPO's completion tokens (none where nothing was kept)."""
    from helpers import paired

    rft, settings = run["rft"], run["settings"]
    assert rft["prompts"] == settings["max_steps"] * settings["prompts_per_step"]
    assert rft["sampled"] == rft["prompts"] * settings["num_generations"]
    assert rft["problems_with_a_kept_answer"] <= min(rft["kept"], rft["prompts"])
    assert round(sum(right["rft"]) / run["heldout_problems"], 4) == round(rft["heldout_accuracy"], 4)
    assert rft["flips"] == paired.flips(right["cold_start"], right["rft"])
    assert rft["grpo_vs_rft"] == paired.flips(right["rft"], right["grpo"])
    if rft["kept"] == 0:
        assert rft["steps"] == 0 and rft["flips"]["wrong_to_right"] + rft["flips"]["right_to_wrong"] == 0
    else:
        assert_grpo_tokens_matched(rft["steps"], rft["kept_tokens"], run["sft_control"]["grpo_completion_tokens"])


def assert_grpo_tokens_matched(steps, row_tokens, grpo_tokens):
    """SFT steps of 8 rows of `row_tokens` each make GRPO's completion tokens, within one step's worth."""
    step_tokens = 8 * row_tokens
    assert steps == 1 or abs(steps * step_tokens - grpo_tokens) <= step_tokens


def test_05_hindi_counts_fertility_probes_and_reload(load):
    run = load("05_cpt_hindi")
    # LoRA plus trainable copies of the input and output embeddings (modules_to_save): 4,884,480 + 2 * 49,152 * 576
    # where PEFT makes two (a CPU, either engine), + 1 * 49,152 * 576 where Unsloth keeps them tied (a GPU)
    copies = {"two separate matrices": 2, "one shared (tied) matrix": 1}[run["embedding_copies"]]
    if run["device"].startswith(("CPU", "Apple GPU")):
        assert copies == 2, "off a CUDA GPU PEFT makes two copies (Unsloth keeps them tied only on its GPU path)"
    assert_lora_counts(run, extra=copies * VOCAB * HIDDEN)
    extended = run["extended_vocab"]
    # The new tokens cut Hindi into 2.167 tokens per word instead of 5.5 (smoke; 2.075 full): at most half. Tokenizers
    # count the same on every CPU.
    fertility = run["fertility"]
    assert fertility["extended"]["hindi"]["tokens_per_word"] <= fertility["base"]["hindi"]["tokens_per_word"] / 2
    assert fertility["extended"]["english"] == fertility["base"]["english"]
    assert extended["english_ids_unchanged"] is True
    assert run["reload_identical"] == {"plain": True, "extended": True}
    # EEVE stage 1 trained the new rows (how much: an effect, above) and left every old row exactly as it was.
    stage1 = extended["stage1"]
    assert stage1["old_rows_unchanged"] is True and stage1["steps"] == run["settings"]["stage1_steps"]
    assert extended["steps"] == run["steps"]  # equal optimizer steps for the two runs
    # the probe checks and word counts are computed on the continuations the notebook saved
    from helpers import corpora, generation

    words = corpora.load_word_list()
    for side in ("before", "after", "extended_after"):
        probes = run["probes"][side]
        assert len(probes["sampled"]) == len(probes["prompts"]) * run["settings"]["probe_samples"]
        assert [generation.loop_check(t) for t in probes["sampled"]] == probes["checks"]
        assert [generation.loop_check(t) for t in probes["greedy"]] == probes["greedy_checks"]
        assert [generation.loop_check(t) for t in probes["anti_repetition"]] == probes["anti_repetition_checks"]
        assert corpora.real_word_counts(probes["sampled"], words) == probes["words"]
        assert corpora.real_word_counts(probes["greedy"], words) == probes["greedy_words"]
        assert corpora.real_word_counts(probes["anti_repetition"], words) == probes["anti_repetition_words"]
        # whole characters: a continuation never ends in a character the token limit cut
        assert not any(t.endswith("\ufffd") for t in probes["sampled"] + probes["greedy"] + probes["anti_repetition"])
    sides = {"base model": "before", "CPT": "after", "CPT + extended vocab": "extended_after"}
    assert run["probe_words"] == {name: run["probes"][side]["words"] for name, side in sides.items()}
    speed = run["generation_chars_per_second"]
    assert all(s["chars"] > 0 and s["chars_per_second"] > 0 for s in speed.values())


def test_06_code_completions_are_recomputed_and_reload_is_identical(load):
    run = load("06_cpt_code")
    assert_lora_counts(run)
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
    assert tasks and all(t["target"] for t in tasks)
    assert any(t["before"] for t in tasks) and any(t["after"] for t in tasks)
    for side in ("before", "after"):
        rate = sum(t[side] == t["target"] for t in tasks) / len(tasks)
        assert abs(rate - run["next_line_exact_match"][side]) < 1e-3, side
    assert_code_checks_recomputed(run)


def assert_code_checks_recomputed(run):
    """06's completions that ran past the function, bodies that loop and next-line flips, recomputed from the raw and
    the cut completions and the generated lines saved in its results.json (a run, or a committed reference)."""
    from helpers import corpora, paired

    completions, tasks = run["completions"], run["next_line_tasks"]
    for side in ("before", "after"):
        assert run["completions_running_past"][side] == sum(corpora.runs_past(c[f"generated_{side}"])
                                                            for c in completions), side
        assert run["looping_completions"][side] == sum(corpora.loops(c[side]) for c in completions), side
    right = {side: [t[side] == t["target"] for t in tasks] for side in ("before", "after")}
    assert run["next_line_flips"] == paired.flips(right["before"], right["after"])
