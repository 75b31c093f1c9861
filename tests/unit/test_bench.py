"""tools/bench.py, Unsloth against plain transformers + PEFT + TRL as two runs of notebook 02's recipe: its commands
and its comparison, without training (the recipe's step marks are tested in test_distributed.py)."""

import json

import pytest
import yaml

from helpers import ROOT
from tools import bench


def fake_run(engine, tokens_per_second, seconds, peak, loss):
    return {"engine": engine, "tokens_per_second": tokens_per_second, "seconds": seconds,
            "peak_memory_mb": peak, "final_loss": loss, "gpu": False, "device": "CPU (2 cores)"}


def fake_report(**overrides):
    args = bench.parse_args(["--steps", "4", "--warmup-steps", "1"])
    engines = {"unsloth": fake_run("unsloth", 1500.0, 30.0, 2000.0, 1.40),
               "plain": fake_run("plain", 1000.0, 45.0, 2500.0, 1.41)}
    engines.update(overrides)
    return bench.summarize(engines, "CPU (2 cores)", args, 123.4, "tools/bench.py --steps 4 --warmup-steps 1")


def recipe_results(engine="plain", marks=None, unsloth_imported=False):
    """The fields of a recipe's results.json that the bench reads."""
    return {"engine": engine, "unsloth_imported": unsloth_imported, "device": "CPU (2 cores)", "environment": "cpu",
            "steps": 3, "versions": {"torch": "x"},
            "train": {"seconds": 9.0, "peak_memory_mb": 2000.0, "memory_kind": "process peak RSS"},
            "loss_curve": {"step": [1, 2, 3], "loss": [2.0, 1.8, 1.7]},
            "step_marks": marks or [[0, 0.0, 0], [1, 4.0, 900], [2, 6.0, 1800], [3, 8.5, 2800]]}


def test_defaults_are_cpu_sized_and_bad_arguments_are_refused():
    args = bench.parse_args([])
    assert (args.steps, args.warmup_steps, args.save_reference, args.device_label) == (20, 2, False, None)
    for argv in (["--steps", "0"], ["--warmup-steps", "-1"], ["--plain-loss", "trl"]):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)


def test_each_engine_is_notebook_02s_recipe_in_its_own_process(tmp_path):
    args = bench.parse_args(["--steps", "7", "--warmup-steps", "3", "--out", str(tmp_path)])
    for engine in bench.ENGINES:
        command, env = bench.recipe_command(engine, args)
        assert command[1] == str(ROOT / "recipes" / "sft.py") and env["SMOL_ENGINE"] == engine
        value = {flag: command[i + 1] for i, flag in enumerate(command) if flag.startswith("--")}
        assert value["--max_steps"] == "10" and value["--logging_steps"] == "1"  # a mark with tokens every step
        assert value["--runs_dir"] == str(tmp_path) and value["--run_name"] == f"bench-{engine}"
        config = yaml.safe_load((ROOT / value["--config"]).read_text(encoding="utf-8"))
        assert config["notebook"] == "02_lora_finetuning" and config["lora_r"] == 16


def test_timed_window_starts_at_the_end_of_the_warm_up():
    marks = recipe_results()["step_marks"]
    assert bench.timed_window(marks, 1) == {"timed_steps": 2, "seconds": 4.5, "tokens": 1900,
                                            "tokens_per_second": 422.2, "seconds_per_step": 2.25}
    assert bench.timed_window(marks, 0)["tokens"] == 2800
    with pytest.raises(ValueError, match="no timed step"):
        bench.timed_window(marks, 3)
    with pytest.raises(ValueError, match="no mark at step 5"):
        bench.timed_window(marks, 5)
    with pytest.raises(ValueError, match="logging_steps 1"):
        bench.timed_window([[0, 0.0, 0], [1, 1.0, None], [2, 2.0, None]], 1)


def test_engine_result_reads_the_recipes_results():
    line = bench.engine_result(recipe_results(), 1)
    assert (line["engine"], line["gpu"], line["final_loss"], line["tokens"]) == ("plain", False, 1.7, 1900)
    assert line["peak_memory_mb"] == 2000.0 and line["loss_curve"] == [[1, 2.0], [2, 1.8], [3, 1.7]]


def test_run_engine_refuses_a_failed_or_impure_run(tmp_path, monkeypatch):
    args = bench.parse_args(["--out", str(tmp_path), "--steps", "2", "--warmup-steps", "1"])
    written = {}

    def fake_recipe(command, env, cwd):
        engine = env["SMOL_ENGINE"]
        folder = tmp_path / f"bench-{engine}"
        folder.mkdir(exist_ok=True)
        (folder / "results.json").write_text(json.dumps(written[engine]))
        return type("Done", (), {"returncode": 0})()

    monkeypatch.setattr(bench.subprocess, "run", fake_recipe)
    written["plain"] = recipe_results()
    assert bench.run_engine("plain", args)["tokens"] == 1900
    written["plain"] = recipe_results(unsloth_imported=True)  # Unsloth patched the plain run: not a comparison
    assert "not plain" in bench.run_engine("plain", args)["error"]
    written["unsloth"] = recipe_results("plain")  # the recipe fell back to the plain engine
    assert "ran plain" in bench.run_engine("unsloth", args)["error"]
    monkeypatch.setattr(bench.subprocess, "run", lambda *a, **k: type("Done", (), {"returncode": 1})())
    assert bench.run_engine("plain", args) == {"engine": "plain", "error": "its recipe exited with 1 (see the "
                                                                          "output above)"}


def test_ratios_are_unsloth_over_plain():
    assert fake_report()["ratio_unsloth_over_plain"] == {"tokens_per_second": 1.5, "seconds": 0.667,
                                                         "peak_memory_mb": 0.8}
    failed = bench.ratios({"unsloth": fake_run("unsloth", 10.0, 1.0, 1.0, 1.0), "plain": {"error": "exited with 1"}})
    assert failed == {"tokens_per_second": None, "seconds": None, "peak_memory_mb": None}
    assert set(bench.ratios({"unsloth": fake_run("u", 10.0, 1.0, 1.0, 1.0),
                             "plain": fake_run("p", 0, 0, 0, 1.0)}).values()) == {None}


def test_report_table_and_plot(tmp_path):
    import matplotlib

    report = json.loads(json.dumps(fake_report()))
    assert report["steps"] == {"warmup": 1, "timed": 4, "total": 5} and list(report["engines"]) == ["unsloth", "plain"]
    assert "no Unsloth" in report["plain_engine"] and report["config"] == "recipes/configs/sft_lora.yaml"
    lines = bench.table(report).splitlines()
    assert lines[0] == "CPU (2 cores): 4 timed steps after 1 warm-up"
    assert lines[2].split() == ["unsloth", "1,500.0", "30.0", "2,000", "1.4000"]
    assert lines[4].split() == ["unsloth/plain", "1.50x", "0.67x", "0.80x"]
    failed = bench.table(fake_report(plain={"engine": "plain", "error": "its recipe exited with 1"}))
    assert "plain         failed: its recipe exited with 1" in failed and failed.endswith("-x        -x        -x")
    path = bench.plot(report, tmp_path / "sub" / "bench.png")
    assert matplotlib.get_backend().lower() == "agg" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bench.plot(fake_report(plain={"engine": "plain", "error": "x"}), tmp_path / "one.png")  # a failed engine: left out
    assert (tmp_path / "one.png").exists()


def test_save_reference_copies_the_report_with_a_measured_line(tmp_path):
    report = fake_report()
    target = bench.save_reference(report, root=tmp_path, today="2026-11-29")
    assert target == tmp_path / "data" / "reference" / "02_lora_finetuning" / "bench-cpu" / "bench.json"
    saved = json.loads(target.read_text())
    assert saved["measured"].startswith("2026-11-29, CPU (2 cores) (")
    assert saved["measured"].endswith(", tools/bench.py --steps 4 --warmup-steps 1")
    assert {k: v for k, v in saved.items() if k != "measured"} == json.loads(json.dumps(report))
    assert bench.reference_path({**report, "gpu": True}, tmp_path).parent.name == "bench-gpu"


def test_main_compares_both_engines_and_saves_no_reference_when_one_fails(tmp_path, monkeypatch, capsys):
    runs = {"unsloth": fake_run("unsloth", 300.0, 20.0, 1800.0, 1.5), "plain": fake_run("plain", 200.0, 30.0, 2400.0,
                                                                                        1.5)}
    saved = []
    monkeypatch.setattr(bench, "run_engine", lambda engine, args: runs[engine])
    monkeypatch.setattr(bench, "save_reference", lambda report: saved.append(report) or tmp_path / "ref.json")
    assert bench.main(["--out", str(tmp_path), "--device-label", "test box", "--save-reference"]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["device"] == "test box" and report["ratio_unsloth_over_plain"]["tokens_per_second"] == 1.5
    assert (tmp_path / "bench.png").exists() and saved and "unsloth/plain" in capsys.readouterr().out
    runs["plain"] = {"engine": "plain", "error": "its recipe exited with 1"}
    saved.clear()
    assert bench.main(["--out", str(tmp_path), "--save-reference"]) == 1 and not saved


def test_the_committed_bench_is_what_the_readers_read():
    # docs/MEASUREMENTS.md and notebook 02 read these keys of every committed bench.json.
    found = sorted((ROOT / "data" / "reference" / "02_lora_finetuning").glob("bench-*/bench.json"))
    assert found, "no committed data/reference/02_lora_finetuning/bench-*/bench.json"
    for path in found:
        report = json.loads(path.read_text(encoding="utf-8"))
        assert set(report["ratio_unsloth_over_plain"]) == set(bench.RATIO_KEYS)
        for name in bench.ENGINES:
            line = report["engines"][name]
            assert {"tokens_per_second", "seconds_per_step", "peak_memory_mb", "memory_kind", "final_loss"} <= set(line)
        assert report["steps"]["timed"] >= 1 and report["measured"]
