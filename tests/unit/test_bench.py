"""tools/bench.py, Unsloth against plain transformers + PEFT + TRL: its pure parts, without training."""

import argparse
import json

import numpy as np
import pytest

from tools import bench


def fake_run(engine, tokens_per_second, seconds, peak, loss):
    return {"engine": engine, "tokens_per_second": tokens_per_second, "seconds": seconds,
            "peak_memory_mb": peak, "final_loss": loss, "gpu": False, "device": "CPU (2 cores)"}


def fake_report(tmp_path=None, **overrides):
    args = bench.parse_args(["--steps", "4", "--warmup-steps", "1"])
    engines = {
        "unsloth": fake_run("unsloth", 1500.0, 30.0, 2000.0, 1.40),
        "plain": {**fake_run("plain", 1000.0, 45.0, 2500.0, 1.41), "plain_loss": "model",
                  "plain_engine": bench.PLAIN_MODEL_LOSS},
    }
    engines.update(overrides)
    return bench.summarize(engines, "CPU (2 cores)", False, args, 123.4, "tools/bench.py --steps 4 --warmup-steps 1")


def test_defaults_are_cpu_sized_and_options_parse():
    args = bench.parse_args([])
    assert (args.steps, args.warmup_steps, args.save_reference, args.plain_loss) == (20, 2, False, "auto")
    assert args.engine is None and args.device_label is None
    args = bench.parse_args(["--steps", "60", "--warmup-steps", "0", "--device-label", "H100", "--save-reference",
                             "--plain-loss", "trl"])
    assert (args.steps, args.warmup_steps, args.device_label, args.save_reference, args.plain_loss) == (
        60, 0, "H100", True, "trl")


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--warmup-steps", "-1"], ["--engine", "fast"],
                                  ["--plain-loss", "liger"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)


def test_each_engine_runs_in_its_own_process_with_the_same_steps(tmp_path):
    args = bench.parse_args(["--steps", "7", "--warmup-steps", "3", "--out", str(tmp_path)])
    commands = {engine: bench.child_command(engine, args, tmp_path / f"{engine}.json") for engine in bench.ENGINES}
    assert set(commands) == {"unsloth", "plain"}
    for engine, command in commands.items():
        assert command[1].endswith("tools/bench.py")
        assert command[command.index("--engine") + 1] == engine
        assert command[command.index("--steps") + 1] == "7"
        assert command[command.index("--warmup-steps") + 1] == "3"
        assert command[command.index("--result") + 1] == str(tmp_path / f"{engine}.json")
        child = bench.parse_args(command[2:])
        assert (child.engine, child.steps, child.warmup_steps) == (engine, 7, 3)


def test_settings_are_notebook_02s():
    s = bench.settings()
    assert (s["lora_r"], s["lora_alpha"], s["lora_dropout"]) == (16, 16, 0.0)
    assert s["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert (s["batch_size"], s["grad_accum"], s["learning_rate"], s["max_seq_length"]) == (8, 2, 2e-4, 512)
    assert (s["lr_warmup_steps"], s["seed"], s["train_data"]) == (5, 3407, "data/alpaca_train.jsonl")


def test_batch_tokens_counts_the_attention_mask_not_the_padding():
    batch = {"input_ids": np.zeros((2, 5)), "attention_mask": np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])}
    assert bench.batch_tokens(batch) == (8, 10)
    padding_free = {"input_ids": np.zeros((1, 9)), "position_ids": np.arange(9)[None]}
    assert bench.batch_tokens(padding_free) == (9, 9)


def test_timed_window_leaves_out_the_warm_up_steps():
    marks = [{"step": 0, "time": 100.0, "tokens": 0}, {"step": 1, "time": 110.0, "tokens": 500},
             {"step": 2, "time": 112.0, "tokens": 900}, {"step": 3, "time": 116.0, "tokens": 1700}]
    window = bench.timed_window(marks, 1)
    assert window == {"timed_steps": 2, "seconds": 6.0, "tokens": 1200, "tokens_per_second": 200.0,
                      "seconds_per_step": 3.0}
    assert bench.timed_window(marks, 0)["tokens_per_second"] == round(1700 / 16, 1)
    with pytest.raises(ValueError, match="no timed step"):
        bench.timed_window(marks, 3)
    with pytest.raises(ValueError, match="no mark at step 5"):
        bench.timed_window(marks, 5)


def test_collator_tokens_take_grad_accum_batches_per_step_and_ignore_prefetched_ones():
    batches = [(10, 16), (20, 24), (30, 32), (40, 48), (50, 56), (60, 64), (999, 999)]  # the last one prefetched
    assert bench.collator_tokens(batches, 2, 1, 3) == 30 + 40 + 50 + 60
    assert bench.collator_tokens(batches, 2, 0, 1) == 30


def test_final_loss_and_curve_come_from_the_logged_training_losses():
    history = [{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}, {"train_loss": 1.75, "step": 2}]
    assert bench.final_loss(history) == 1.5
    assert bench.loss_curve(history) == [[1, 2.0], [2, 1.5]]
    assert bench.final_loss([{"train_runtime": 3.0}]) is None


def test_ratios_are_unsloth_over_plain():
    report = fake_report()
    assert report["ratio_unsloth_over_plain"] == {"tokens_per_second": 1.5, "seconds": 0.667, "peak_memory_mb": 0.8}
    failed = bench.ratios({"unsloth": fake_run("unsloth", 10.0, 1.0, 1.0, 1.0), "plain": {"error": "exited with 1"}})
    assert failed == {"tokens_per_second": None, "seconds": None, "peak_memory_mb": None}
    assert bench.ratios({"unsloth": fake_run("u", 10.0, 1.0, 1.0, 1.0), "plain": fake_run("p", 0, 0, 0, 1.0)}) == (
        {"tokens_per_second": None, "seconds": None, "peak_memory_mb": None})


def test_report_shape_survives_json_and_names_the_plain_engine():
    report = json.loads(json.dumps(fake_report()))
    assert set(report) >= {"benchmark", "device", "gpu", "steps", "settings", "plain_engine", "engines",
                           "ratio_unsloth_over_plain", "total_seconds", "command", "tokens_counted", "peak_memory"}
    assert report["steps"] == {"warmup": 1, "timed": 4, "total": 5}
    assert list(report["engines"]) == ["unsloth", "plain"]
    assert "Trainer.compute_loss" in report["plain_engine"] and "no Unsloth" in report["plain_engine"]
    assert report["device"] == "CPU (2 cores)" and report["gpu"] is False
    assert report["command"] == "tools/bench.py --steps 4 --warmup-steps 1"


def test_table_shows_both_engines_and_the_ratio():
    lines = bench.table(fake_report()).splitlines()
    assert lines[0] == "CPU (2 cores): 4 timed steps after 1 warm-up"
    assert lines[2].split() == ["unsloth", "1,500.0", "30.0", "2,000", "1.4000"]
    assert lines[3].split() == ["plain", "1,000.0", "45.0", "2,500", "1.4100"]
    assert lines[4].split() == ["unsloth/plain", "1.50x", "0.67x", "0.80x"]
    failed = bench.table(fake_report(plain={"engine": "plain", "error": "its process exited with 1"}))
    assert "plain         failed: its process exited with 1" in failed
    assert failed.splitlines()[-1].split() == ["unsloth/plain", "-x", "-x", "-x"]


def test_plot_is_written_from_a_fake_result(tmp_path):
    import matplotlib

    path = bench.plot(fake_report(), tmp_path / "sub" / "bench.png")
    assert matplotlib.get_backend().lower() == "agg"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    # A failed engine is left out of the chart rather than breaking it.
    bench.plot(fake_report(plain={"engine": "plain", "error": "x"}), tmp_path / "one.png")
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


def test_main_writes_json_png_and_reference_from_the_children(tmp_path, monkeypatch, capsys):
    runs = {"unsloth": fake_run("unsloth", 300.0, 20.0, 1800.0, 1.5),
            "plain": {**fake_run("plain", 200.0, 30.0, 2400.0, 1.5), "plain_engine": bench.PLAIN_MODEL_LOSS}}
    calls = []

    def fake_child(engine, args):
        calls.append((engine, args.steps, args.warmup_steps))
        return runs[engine]

    saved = []
    monkeypatch.setattr(bench, "run_child", fake_child)
    monkeypatch.setattr(bench, "save_reference", lambda report: saved.append(report) or tmp_path / "ref.json")
    assert bench.main(["--out", str(tmp_path), "--device-label", "test box", "--save-reference"]) == 0
    assert calls == [("unsloth", 20, 2), ("plain", 20, 2)]
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report["device"] == "test box" and report["ratio_unsloth_over_plain"]["tokens_per_second"] == 1.5
    assert (tmp_path / "bench.png").exists() and saved and saved[0]["device"] == "test box"
    assert "unsloth/plain" in capsys.readouterr().out


def test_main_fails_and_saves_no_reference_when_an_engine_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "run_child", lambda engine, args: (
        {"engine": engine, "error": "exited with 1"} if engine == "plain" else fake_run(engine, 1.0, 1.0, 1.0, 1.0)))
    monkeypatch.setattr(bench, "save_reference", lambda report: pytest.fail("saved a reference of a failed run"))
    assert bench.main(["--out", str(tmp_path), "--save-reference"]) == 1
    assert json.loads((tmp_path / "bench.json").read_text())["engines"]["plain"]["error"] == "exited with 1"


def test_args_namespace_is_what_summarize_reads():
    args = argparse.Namespace(steps=3, warmup_steps=0)
    assert bench.summarize({}, "d", False, args, 0.0)["steps"] == {"warmup": 0, "timed": 3, "total": 3}
