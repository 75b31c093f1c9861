import json

import pytest

from helpers import results, runtime


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOL_RUNS_DIR", str(tmp_path))
    return tmp_path


def test_run_dir_honours_env(runs):
    assert results.run_dir("nb") == runs / "nb" and (runs / "nb").is_dir()


def test_save_and_load_results(runs):
    assert results.load_results("nb") is None
    path = results.save_results("nb", {"eval_loss": results.before_after(2.123456, 1.5), "text": "नमस्ते"})
    expected = {"eval_loss": {"before": 2.1235, "after": 1.5}, "text": "नमस्ते"}
    assert json.loads(path.read_text(encoding="utf-8")) == expected
    assert results.load_results("nb")["text"] == "नमस्ते"


def test_header_and_training_summary():
    head = results.header("nb", "smoke")
    assert head["notebook"] == "nb" and head["profile"] == "smoke" and "trl" in head["versions"]
    cost = runtime.Measurement(seconds=12.345, peak_memory_mb=1000.04, memory_kind="process peak RSS")
    log = [{"loss": 2.0, "step": 1, "epoch": 0.5}, {"loss": 1.0, "step": 2, "epoch": 1.0},
           {"train_runtime": 1, "step": 2, "epoch": 1.0}]
    summary = results.training_summary(log, cost)
    assert summary["epochs"] == 1.0 and results.training_summary(log[:1], cost)["epochs"] == 0.5
    assert summary["steps"] == 2 and summary["first_train_loss"] == 2.0 and summary["last_train_loss"] == 1.0
    assert summary["train"] == {"seconds": 12.35, "peak_memory_mb": 1000.0, "memory_kind": "process peak RSS"}
    with pytest.raises(ValueError, match="logging_steps"):
        results.training_summary([{"step": 1}], cost)


def test_comparison_table_marks_missing_runs():
    run = {
        "device": "CPU", "profile": "smoke", "params": {"trainable": 1000, "total": 2000, "trainable_percent": 50.0},
        "steps": 3, "train": {"seconds": 1.0, "peak_memory_mb": 10.0, "memory_kind": "process peak RSS"},
        "first_train_loss": 2.0, "last_train_loss": 1.0, "eval_loss": {"before": 2.5, "after": 2.0},
    }
    rows = results.comparison_table({"a": run, "b": None})
    assert rows[2] == {"metric": "engine", "a": "unsloth", "b": "(not run)"}  # a run from before the plain engine
    assert rows[3] == {"metric": "trained on", "a": "?", "b": "(not run)"}  # this run names no training data
    assert rows[4] == {"metric": "trainable parameters", "a": "1,000", "b": "(not run)"}
    assert rows[-2] == {"metric": "held-out loss after", "a": 2.0, "b": "(not run)"}
    assert rows[-1] == {"metric": "fact questions right after", "a": "(not measured)", "b": "(not run)"}
    run["fact_flips"] = {"items": 48, "right_before": 22, "right_after": 33}
    assert results.comparison_table({"a": run})[-1] == {"metric": "fact questions right after", "a": "33 of 48"}


def test_load_reference_picks_the_profile_and_the_same_kind_of_device(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REFERENCE_DIR", tmp_path / "data" / "reference")
    assert results.load_reference("01_x", "full", gpu=True) is None
    for folder, profile, device in (("full-h100", "full", "NVIDIA H100 80GB HBM3"),
                                    ("full-cpu", "full", "CPU (2 cores)"),
                                    ("smoke-cpu", "smoke", "CPU (2 cores)")):
        path = tmp_path / "data" / "reference" / "01_x" / folder / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"profile": profile, "device": device}), encoding="utf-8")
    assert results.load_reference("01_x", "full", gpu=True)["device"].startswith("NVIDIA")
    on_cpu = results.load_reference("01_x", "full", gpu=False)
    assert on_cpu["device"] == "CPU (2 cores)" and on_cpu["reference"] == "data/reference/01_x/full-cpu/results.json"
    assert results.load_reference("01_x", "smoke", gpu=True)["device"] == "CPU (2 cores)"
    assert results.load_reference("01_x", "other") is None


def test_load_reference_prefers_a_run_on_the_same_engine(tmp_path, monkeypatch):
    from helpers import engine

    monkeypatch.setattr(results, "REFERENCE_DIR", tmp_path / "data" / "reference")
    for folder, extra in (("smoke-cpu", {}), ("smoke-cpu-plain", {"engine": "plain"})):
        path = tmp_path / "data" / "reference" / "01_x" / folder / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"profile": "smoke", "device": "CPU (2 cores)", **extra}), encoding="utf-8")
    monkeypatch.setattr(engine, "_chosen", "plain")
    assert results.load_reference("01_x", "smoke", gpu=False)["reference"].endswith("smoke-cpu-plain/results.json")
    monkeypatch.setattr(engine, "_chosen", "unsloth")
    assert results.load_reference("01_x", "smoke", gpu=False)["reference"].endswith("smoke-cpu/results.json")


def test_load_reference_prefers_the_notebooks_own_settings_to_a_variant(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REFERENCE_DIR", tmp_path / "data" / "reference")
    for folder, extra in (("full-cpu-seed2", {"variant": "SEED = 2"}), ("full-cpu", {})):
        path = tmp_path / "data" / "reference" / "04_x" / folder / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"profile": "full", "device": "CPU (2 cores)", **extra}), encoding="utf-8")
    assert results.load_reference("04_x", "full", gpu=False)["reference"].endswith("full-cpu/results.json")
    asked = results.load_reference("04_x", "full", gpu=False, variant="SEED = 2")
    assert asked["reference"].endswith("full-cpu-seed2/results.json")
    assert results.load_reference("04_x", "full", gpu=False, variant="SEED = 9") is None


def test_reference_note_compares_with_the_same_profile_and_device_in_two_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REFERENCE_DIR", tmp_path / "data" / "reference")
    base = {"notebook": "04_x", "profile": "full", "device": "CPU (2 cores)", "train_data": "generated",
            "engine": "unsloth", "measured": "2026-12-03 on a 2-core CPU, a long story",
            "settings": {"seed": 3407, "learning_rate": 1e-4, "dtype": "torch.float32"}}

    def commit(folder, **changes):
        path = tmp_path / "data" / "reference" / "04_x" / folder / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**base, **changes}), encoding="utf-8")

    assert results.reference_note(base).splitlines()[1].startswith("No full-profile reference on this device")
    commit("full-h100", device="NVIDIA H100", settings={**base["settings"], "dtype": "torch.bfloat16"})
    commit("smoke-cpu", profile="smoke")
    assert results.reference_note(base).startswith("This run: full profile on CPU (2 cores), unsloth engine.\nNo ")
    commit("full-cpu-plain", engine="plain")
    assert results.reference_note(base).splitlines()[1].endswith("the plain engine: close, not identical.")
    commit("full-cpu-seed2", settings={**base["settings"], "seed": 2}, variant="SEED = 2")  # same engine: first
    assert results.reference_note(base).splitlines()[1] == (
        "Reference full-cpu-seed2 (2026-12-03): other settings (seed 3407 -> 2): compare how far each moved.")
    commit("full-cpu")
    note = results.reference_note(base).splitlines()
    assert note == ["This run: full profile on CPU (2 cores), unsloth engine.",
                    "Reference full-cpu (2026-12-03): comparable number for number."]
    assert results.settings_changed(base, {"settings": {}}) == ["learning_rate 0.0001 -> None", "seed 3407 -> None"]


def test_every_committed_reference_names_its_notebook_profile_and_device():
    paths = sorted(results.REFERENCE_DIR.glob("*/*/results.json"))
    assert paths, "no reference results under data/reference/"
    for path in paths:
        run = json.loads(path.read_text(encoding="utf-8"))
        assert run["notebook"] == path.parent.parent.name
        assert path.parent.name.startswith(run["profile"] + "-") and run["device"] and run["measured"]
        assert results.headline_metrics(run), f"{path} holds no before/after metric"


def test_readme_and_teaching_tables_are_generated_from_data_reference(tmp_path, monkeypatch):
    from tools import readme_results, teaching_tables

    assert readme_results.main(["--check"]) == 0, "run python -m tools.readme_results"
    # A changed table in either file makes the check fail; rewriting repairs it.
    for module, name, marker in (
        (readme_results, "MEASUREMENTS", readme_results.START),
        (readme_results, "MEASUREMENTS", "<!-- colab-sim:start -->"),
        (teaching_tables, "TEACHING", "<!-- measured:01_full_finetuning:start -->"),
    ):
        copy = tmp_path / f"{name}.md"
        original = getattr(module, name)
        stale = original.read_text(encoding="utf-8").replace(marker, marker + "\n| a stale row |", 1)
        copy.write_text(stale, encoding="utf-8")
        monkeypatch.setattr(module, name, copy)
        assert readme_results.main(["--check"]) == 1
        assert readme_results.main([]) == 0 and readme_results.main(["--check"]) == 0
        assert "a stale row" not in copy.read_text(encoding="utf-8")


def test_the_colab_sim_block_is_checked_and_written_by_readme_results(tmp_path, monkeypatch, capsys):
    # docs/MEASUREMENTS.md has one writer: one character changed by hand in the simulated Colab's block (its lines
    # come from data/reference/colab-sim.json) makes --check fail, and write_measurements puts it back byte for byte.
    from tools import readme_results
    from tools.colab_sim import report

    original = readme_results.MEASUREMENTS.read_text(encoding="utf-8")
    head, rest = original.split(report.README_START, 1)
    body, tail = rest.split(report.README_END, 1)
    assert body == "\n" + readme_results.colab_sim_block() + "\n" and "2-core" in body
    copy = tmp_path / "MEASUREMENTS.md"
    copy.write_text(head + report.README_START + body.replace("2-core", "3-core", 1) + report.README_END + tail,
                    encoding="utf-8")
    monkeypatch.setattr(readme_results, "MEASUREMENTS", copy)
    assert readme_results.render(copy.read_text(encoding="utf-8")) == original
    assert readme_results.refresh(copy, readme_results.render, check=True)
    assert "MEASUREMENTS.md: measured tables are stale" in capsys.readouterr().err
    assert readme_results.write_measurements() and copy.read_text(encoding="utf-8") == original
    assert not readme_results.write_measurements()


def test_cell_times_reads_nbclient_timestamps(tmp_path):
    from tools import save_reference

    def code(source, start, end, tags=()):
        stamps = {"iopub.execute_input": f"2026-11-29T10:00:{start}Z",
                  "shell.execute_reply": f"2026-11-29T10:00:{end}Z"}
        return {"cell_type": "code", "source": source, "metadata": {"execution": stamps, "tags": list(tags)},
                "outputs": []}

    cells = [code("pip stuff", "00.0", "30.0", tags=["install"]),
             {"cell_type": "markdown", "source": "## 6 · Train\ntext", "metadata": {}},
             code("# a comment\nfrom x import y\n\ntrainer.train()\n", "01.0", "13.5"),
             code("print(1)", "14.0", "14.2")]
    executed = tmp_path / "nb.ipynb"
    executed.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    assert save_reference.cell_times(executed) == [
        {"section": "6 · Train", "cell": "trainer.train()", "seconds": 12.5},
        {"section": "6 · Train", "cell": "print(1)", "seconds": 0.2},
    ]
    del cells[2]["metadata"]["execution"]
    executed.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    with pytest.raises(ValueError, match="timestamps"):
        save_reference.cell_times(executed)


def test_the_words_of_04s_answer_on_grpo_after_sft_hold_for_its_reference():
    # Section 10 says "Not at this size": from a longer SFT, GRPO's flips are within chance, more SFT's beyond it, and
    # the variant's SFT start is stronger than the notebook's cold start (its reason to exist). A re-run that changes
    # any of these must change the words too.
    path = results.REFERENCE_DIR / "04_grpo_reasoning" / "full-cpu-sft234" / "results.json"
    run = json.loads(path.read_text(encoding="utf-8"))
    main = json.loads((path.parent.parent / "full-cpu" / "results.json").read_text(encoding="utf-8"))
    assert run["variant"] == "COLD_START_STEPS = 234" and run["heldout_problems"] == main["heldout_problems"]
    assert run["grpo_flips"]["p_value"] >= 0.05, "GRPO after the longer SFT is beyond chance: rewrite item 2"
    assert run["sft_control"]["flips"]["p_value"] < 0.05, "more SFT is within chance: rewrite item 2"
    assert run["after_cold_start"]["heldout_accuracy"] > main["sft_control"]["heldout_accuracy"]
    assert run["heldout_right"]["base"] == main["heldout_right"]["base"]  # the same problems, the same base model
    assert run["steps_with_reward_signal"] < main["steps_with_reward_signal"]
    assert run["after_cold_start"]["pass_at_k"]["mixed"] < main["after_cold_start"]["pass_at_k"]["mixed"]


def test_the_words_of_04s_answer_on_grpo_against_rejection_sampling_hold_for_its_reference():
    # Section 10's item 3 and its last words: with only a checker, rejection sampling (RFT) scored above GRPO beyond
    # chance, from the same cold start, for about GRPO's time; the intro quotes RFT's accuracy beside the control's.
    run = json.loads((results.REFERENCE_DIR / "04_grpo_reasoning" / "full-cpu" / "results.json").read_text("utf-8"))
    rft = run["rft"]
    assert rft["heldout_accuracy"] > run["heldout_accuracy"]["after"], "GRPO scored above RFT: rewrite item 3"
    assert rft["grpo_vs_rft"]["right_to_wrong"] > rft["grpo_vs_rft"]["wrong_to_right"]
    assert rft["grpo_vs_rft"]["p_value"] < 0.05, "GRPO against RFT is within chance: rewrite item 3"
    assert rft["flips"]["right_before"] == run["grpo_flips"]["right_before"]  # both from the same cold start
    seconds = rft["sampling"]["seconds"] + rft["train"]["seconds"]
    assert abs(seconds / run["train"]["seconds"] - 1) < 0.25, "RFT no longer took about GRPO's time: reword item 3"


def test_committed_full_references_meet_the_lesson_targets():
    """The effect each lesson is named for, in every committed full-profile reference (issue targets)."""
    checked = set()
    for path in sorted(results.REFERENCE_DIR.glob("04_grpo_reasoning/full-*/results.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        if not run.get("variant", "SEED =").startswith("SEED ="):
            continue  # a variant asking another question (issue 39's longer SFT first), checked below
        # Issue 24: at least 300 held-out problems, and every seed gains at least 0.03 over the cold start. Its other
        # target, McNemar p < 0.05 for the notebook's own seed, is missed (p = 0.053; SEED = 2: 0.0004), and the
        # notebook says so.
        assert run["heldout_problems"] >= 300, path
        assert run["grpo_gain"] >= 0.03, f"{path}: GRPO's own held-out gain {run['grpo_gain']} is under 0.03"
        flips = run["grpo_flips"]
        assert flips["wrong_to_right"] > flips["right_to_wrong"], path
        checked.add(run["notebook"])
    for path in sorted(results.REFERENCE_DIR.glob("03_dpo_alignment/full-*/results.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        kinds = run["heldout_by_kind"].values()
        length_only = sum(k["shorter_answer_accuracy"] * k["pairs"] for k in kinds) / sum(k["pairs"] for k in kinds)
        assert run["heldout_reward_accuracy"]["after"] > length_only, (
            f"{path}: DPO does no better than 'prefer the shorter answer'")
        assert run["heldout_by_kind"]["helpful-vs-evasive"]["reward_accuracy"]["after"] > 0.5, path
        checked.add(run["notebook"])
    for path in sorted(results.REFERENCE_DIR.glob("05_cpt_hindi/full-*/results.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        if "variant" in run:  # e.g. the usual small embedding rate, shown beside the lesson, not the lesson itself
            continue
        # Issue 24: Hindi that reads as Hindi. Held-out bits/char after plain CPT at most 3.0; sampled probes of at
        # least 10 Devanagari words on average, at least 80% of them real words after plain CPT, under 50% for the
        # base model's; the extended-vocabulary run writes text too.
        assert run["hindi_bits_per_char"]["after"] <= 3.0, path
        words = run["probe_words"]
        assert words["CPT"]["words_per_text"] >= 10 and words["CPT"]["real_share"] >= 0.8, path
        assert words["base model"]["real_share"] < 0.5, path
        assert words["CPT + extended vocab"]["words_per_text"] >= 10, path
        # Issue 37: measured loop-aware. At least 60% of the sampled words distinct within their continuation after
        # plain CPT, and no greedy continuation with ANTI_REPETITION loops (plain greedy ones may: the lesson).
        assert words["CPT"]["distinct_share"] >= 0.6, path
        assert run["probes"]["after"]["anti_repetition_words"]["loops"] == 0, path
        checked.add(run["notebook"])
    missing = {"03_dpo_alignment", "04_grpo_reasoning", "05_cpt_hindi"} - checked
    assert not missing, f"no full-profile reference (without a variant) under data/reference/ for {sorted(missing)}"


def test_settings_of_takes_the_plain_upper_case_knobs():
    import torch

    namespace = {"MAX_STEPS": 60, "LEARNING_RATE": 2e-5, "TARGETS": ("q_proj", "v_proj"), "PROBE": {"temperature": 0.7},
                 "DTYPE": torch.float32, "MODEL_SOURCE": "auto", "LIMIT": None, "NOTEBOOK": "nb", "PROFILE": "full",
                 "OUT": object(), "MODEL": torch.nn.Linear(1, 1), "helper": 3, "_HIDDEN": 1, "FN": len}
    assert results.settings_of(namespace) == {
        "max_steps": 60, "learning_rate": 2e-5, "targets": ["q_proj", "v_proj"], "probe": {"temperature": 0.7},
        "dtype": "torch.float32", "model_source": "auto", "limit": None,
    }


def test_record_saves_header_settings_summary_and_pairs(runs, capsys):
    cost = runtime.Measurement(seconds=3.0, peak_memory_mb=10.0, memory_kind="process peak RSS")
    log = [{"loss": 2.0, "step": 1, "epoch": 0.5}, {"loss": 1.5, "step": 2, "epoch": 1.0}]
    run = results.record("nb", "smoke", {"max_steps": 2}, log_history=log, cost=cost, eval_loss=(2.123456, 1.9),
                         nested={"bpc": (4.0, 3.5), "levels": (2, 3, 4)}, samples=[("q", "a")])
    saved = results.load_results("nb")
    assert saved["settings"] == {"max_steps": 2} and saved["steps"] == 2 and saved["notebook"] == "nb"
    assert saved["eval_loss"] == {"before": 2.1235, "after": 1.9}
    assert saved["nested"]["bpc"] == {"before": 4.0, "after": 3.5}
    assert saved["nested"]["levels"] == [2, 3, 4] and run["samples"] == [("q", "a")]
    printed = capsys.readouterr().out
    assert "eval_loss: 2.1235 -> 1.9" in printed and "nested.bpc: 4.0 -> 3.5" in printed and "results.json" in printed
    results.record("nb", "smoke", {}, score=(1, 2))
    assert "steps" not in results.load_results("nb")


def test_record_into_a_recipes_folder_skips_the_notebooks_references(runs, tmp_path, capsys):
    folder = tmp_path / "recipes" / "sft_lora-2proc"
    results.record("02_lora_finetuning", "full", {}, folder=folder, eval_loss=(2.0, 1.5))
    saved = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    assert saved["notebook"] == "02_lora_finetuning" and saved["eval_loss"] == {"before": 2.0, "after": 1.5}
    assert results.load_results("02_lora_finetuning") is None  # not the notebook's own runs/ folder
    assert "Reference" not in capsys.readouterr().out  # a recipe's settings differ: no comparison with notebook runs


def test_save_reference_puts_a_recipe_run_under_recipes(tmp_path, monkeypatch):
    from tools import save_reference

    monkeypatch.setattr(save_reference, "ROOT", tmp_path)
    source = tmp_path / "results.json"
    source.write_text(json.dumps({"notebook": "02_lora_finetuning", "profile": "full", "recipe": "recipes/sft.py"}))
    target = save_reference.save(source, "2proc-cpu", "today, here", recipe="sft_lora")
    assert target == tmp_path / "data" / "reference" / "recipes" / "sft_lora" / "2proc-cpu" / "results.json"
    assert json.loads(target.read_text(encoding="utf-8"))["measured"] == "today, here"
    source.write_text(json.dumps({"notebook": "02_lora_finetuning", "profile": "full"}))
    with pytest.raises(ValueError, match="not a recipe's"):
        save_reference.save(source, "2proc-cpu", "today", recipe="sft_lora")


def test_save_reference_marks_a_variant_beside_the_notebooks_own_run(tmp_path, monkeypatch):
    from tools import save_reference

    monkeypatch.setattr(save_reference, "ROOT", tmp_path)
    source = tmp_path / "results.json"
    source.write_text(json.dumps({"notebook": "04_grpo_reasoning", "profile": "full"}))
    own = json.loads(save_reference.save(source, "cpu", "today").read_text(encoding="utf-8"))
    assert "variant" not in own
    target = save_reference.save(source, "cpu-seed2", "today", variant="SEED = 2")
    assert target == tmp_path / "data" / "reference" / "04_grpo_reasoning" / "full-cpu-seed2" / "results.json"
    assert json.loads(target.read_text(encoding="utf-8"))["variant"] == "SEED = 2"


def test_recipes_block_compares_processes_step_by_step(tmp_path, monkeypatch):
    from tools import readme_results, references

    def run(processes: int, losses: list[float], after: float) -> dict:
        return {
            "device": "CPU (2 cores)", "steps": len(losses), "train_rows": 10, "measured": "here",
            "launch": {"processes": processes, "per_device_batch": 4 // processes, "gradient_accumulation_steps": 1,
                       "effective_batch": 4},
            "train": {"seconds": 8.0, "memory_kind": "process peak RSS"},
            "ranks": {"per_rank": [{"peak_memory_mb": 100.0 + r} for r in range(processes)]},
            "tokens_per_second": 50.0, "first_train_loss": losses[0], "last_train_loss": losses[-1],
            "loss_curve": {"step": list(range(1, len(losses) + 1)), "loss": losses},
            "eval_loss": {"before": 2.0, "after": after},
        }

    folder = tmp_path / "recipes" / "sft_lora"
    for name, data in (("1proc-cpu", run(1, [2.0, 1.9, 1.8, 1.7], 1.5)), ("2proc-cpu", run(2, [2.0, 1.9, 1.6, 1.7],
                                                                                             1.51))):
        (folder / name).mkdir(parents=True)
        (folder / name / "results.json").write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(references, "RECIPE_REFERENCE_DIR", tmp_path / "recipes")
    monkeypatch.setattr(readme_results, "ROOT", tmp_path)
    block = readme_results.recipes_block()
    assert "| sft_lora | 2proc-cpu | CPU (2 cores) | 2 × 2 × 1 = 4 | 8 | 2.00 | 50.0 | 100 / 101 (process" in block
    # 10 rows in batches of 4: 3 steps per pass, the third short (2 rows); the runs differ only there, by 0.2
    assert "identical (4 decimals) for the first 2 of 4 steps" in block
    assert "make 3 steps per pass, the last with 2 rows instead of 4; at those steps (3) the runs differ by up to " \
           "0.2000; at every other step by at most 0.0000" in block
    assert "1.5 (one process), 1.51 (2 processes)" in block
