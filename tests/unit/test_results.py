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
    assert json.loads(path.read_text(encoding="utf-8")) == {"eval_loss": {"before": 2.1235, "after": 1.5}, "text": "नमस्ते"}
    assert results.load_results("nb")["text"] == "नमस्ते"


def test_header_and_training_summary():
    head = results.header("nb", "smoke")
    assert head["notebook"] == "nb" and head["profile"] == "smoke" and "trl" in head["versions"]
    cost = runtime.Measurement(seconds=12.345, peak_memory_mb=1000.04, memory_kind="process peak RSS")
    log = [{"loss": 2.0, "step": 1, "epoch": 0.5}, {"loss": 1.0, "step": 2, "epoch": 1.0}, {"train_runtime": 1, "step": 2, "epoch": 1.0}]
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
    assert rows[2] == {"metric": "trained on", "a": "?", "b": "(not run)"}  # this run names no training data
    assert rows[3] == {"metric": "trainable parameters", "a": "1,000", "b": "(not run)"}
    assert rows[-1] == {"metric": "held-out loss after", "a": 2.0, "b": "(not run)"}


def test_summary_markdown_lists_every_run(runs):
    results.save_results("01_x", {"notebook": "01_x", "profile": "smoke", "device": "CPU", "train": {"seconds": 3.0, "peak_memory_mb": 9.0},
                                   "eval_loss": {"before": 2.0, "after": 1.5}, "extended": {"bpc": {"before": 4.0, "after": 3.0}}})
    results.save_results("02_y", {"notebook": "02_y", "profile": "full"})
    table = results.summary_markdown().splitlines()
    assert len(table) == 4
    assert table[2] == "| 01_x | smoke | CPU | 3.0 | 9.0 | eval_loss 2.0 -> 1.5; extended.bpc 4.0 -> 3.0 |"
    assert table[3].startswith("| 02_y | full |")


def test_load_reference_picks_the_profile_and_the_same_kind_of_device(tmp_path, monkeypatch):
    monkeypatch.setattr(results, "REFERENCE_DIR", tmp_path / "data" / "reference")
    assert results.load_reference("01_x", "full", gpu=True) is None
    for folder, profile, device in (("full-h100", "full", "NVIDIA H100 80GB HBM3"), ("full-cpu", "full", "CPU (2 cores)"),
                                    ("smoke-cpu", "smoke", "CPU (2 cores)")):
        path = tmp_path / "data" / "reference" / "01_x" / folder / "results.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"profile": profile, "device": device}), encoding="utf-8")
    assert results.load_reference("01_x", "full", gpu=True)["device"].startswith("NVIDIA")
    on_cpu = results.load_reference("01_x", "full", gpu=False)
    assert on_cpu["device"] == "CPU (2 cores)" and on_cpu["reference"] == "data/reference/01_x/full-cpu/results.json"
    assert results.load_reference("01_x", "smoke", gpu=True)["device"] == "CPU (2 cores)"
    assert results.load_reference("01_x", "other") is None


def test_every_committed_reference_names_its_notebook_profile_and_device():
    paths = sorted(results.REFERENCE_DIR.glob("*/*/results.json"))
    assert paths, "no reference results under data/reference/"
    for path in paths:
        run = json.loads(path.read_text(encoding="utf-8"))
        assert run["notebook"] == path.parent.parent.name
        assert path.parent.name.startswith(run["profile"] + "-") and run["device"] and run["measured"]
        assert results.headline_metrics(run), f"{path} holds no before/after metric"


def test_readme_reference_table_is_generated_from_data_reference(tmp_path, monkeypatch):
    from tools import readme_results

    assert readme_results.main(["--check"]) == 0, "run python tools/readme_results.py"
    # A changed reference makes the check fail.
    readme = tmp_path / "README.md"
    readme.write_text(readme_results.README.read_text(encoding="utf-8").replace(
        readme_results.START, readme_results.START + "\n| a stale row |", 1), encoding="utf-8")
    monkeypatch.setattr(readme_results, "README", readme)
    assert readme_results.main(["--check"]) == 1
    assert readme_results.main([]) == 0 and readme_results.main(["--check"]) == 0


def test_committed_full_references_meet_the_lesson_targets():
    """The effect each lesson is named for, in every committed full-profile reference (issue targets)."""
    checked = 0
    for path in sorted(results.REFERENCE_DIR.glob("04_grpo_reasoning/full-*/results.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        assert run["heldout_problems"] >= 200, path
        assert run["grpo_gain"] >= 0.05, f"{path}: GRPO's own held-out gain {run['grpo_gain']} is under 0.05"
        checked += 1
    for path in sorted(results.REFERENCE_DIR.glob("03_dpo_alignment/full-*/results.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        kinds = run["heldout_by_kind"].values()
        length_only = sum(k["shorter_answer_accuracy"] * k["pairs"] for k in kinds) / sum(k["pairs"] for k in kinds)
        assert run["heldout_reward_accuracy"]["after"] > length_only, f"{path}: DPO does no better than 'prefer the shorter answer'"
        assert run["heldout_by_kind"]["helpful-vs-evasive"]["reward_accuracy"]["after"] > 0.5, path
        checked += 1
    assert checked, "no full-profile reference for 03 or 04 under data/reference/"
