"""tools/gpu_report.py: what gpu-check leaves in OUT (summaries, the archive of new references and runs, the measured
times a later plan reads) and the log that copies everything printed."""

from __future__ import annotations

import io
import json
import os
import tarfile
import time

from tools import gpu_report
from tools.gpu_steps import Outcome, Step


def test_write_out_records_the_measured_times_and_archives_what_this_run_saved(tmp_path, monkeypatch):
    root, work = tmp_path / "repo", tmp_path / "work"
    timings = root / "data" / "reference" / "gpu-check" / "timings.json"
    monkeypatch.setattr(gpu_report, "ROOT", root)  # names write_out and new_references read, in gpu_report
    monkeypatch.setattr(gpu_report, "TIMINGS", timings)
    monkeypatch.setattr(gpu_report, "WORK", work)
    old = root / "data" / "reference" / "01_old" / "results.json"
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    os.utime(old, (1, 1))  # saved by an earlier run: not this one's
    timings.parent.mkdir(parents=True)
    timings.write_text(json.dumps({"date": "2027-01-01", "device": "H200", "seconds": {"smoke-nbval": 150.0}}))
    since = time.time() - 1
    new = root / "data" / "reference" / "02_lora_finetuning" / "full-t4-emulated-h200" / "results.json"
    new.parent.mkdir(parents=True)
    new.write_text("{}")
    (work / "runs" / "full-02").mkdir(parents=True)
    (work / "runs" / "full-02" / "results.json").write_text("{}")
    (work / "runs" / "full-02" / "train.log").write_text("")  # neither results.json nor a notebook: left out
    logs = tmp_path / "logs"
    logs.mkdir()
    steps = [Step("install", "i", [], source="installed on this machine already"), Step("full-02", "f", []),
             Step("bench", "b", [])]
    outcomes = [Outcome("install", "passed", 5.0), Outcome("full-02", "passed", 101.5),
                Outcome("bench", "failed", 3.0)]
    out = tmp_path / "out"
    gpu_report.write_out(out, steps, outcomes, {"2": 450.0}, {"gpu": "NVIDIA H200"}, logs, since, dry_run=False)
    assert sorted(p.name for p in out.iterdir()) == ["gpu-check.tar.gz", "summary.json", "summary.md"]
    measured = json.loads(timings.read_text())
    # phase 1's time kept; only a passed step that ran (not an install that found itself done) is a measurement
    assert measured["seconds"] == {"smoke-nbval": 150.0, "full-02": 101.5} and measured["device"] == "NVIDIA H200"
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        names = set(tar.getnames())
    assert "data/reference/02_lora_finetuning/full-t4-emulated-h200/results.json" in names
    assert "runs/full-02/results.json" in names and "logs" in names
    assert not {"data/reference/01_old/results.json", "runs/full-02/train.log"} & names
    assert "| bench | failed | 3 | 0 |" in (out / "summary.md").read_text()
    assert gpu_report.commit_command() in (out / "summary.md").read_text()
    # a rehearsal's times are a CPU's: not recorded
    timings.unlink()
    gpu_report.write_out(out, steps, outcomes, {"2": 450.0}, {}, logs, since, dry_run=False, record_times=False)
    assert not timings.exists()


def test_tee_writes_the_console_and_the_log(tmp_path):
    console = io.StringIO()
    tee = gpu_report.Tee(console, tmp_path / "log.txt")
    print("plan of phase 1", file=tee)
    tee.flush()
    assert console.getvalue() == (tmp_path / "log.txt").read_text() == "plan of phase 1\n"


def test_machine_facts_say_when_nothing_ran_on_a_gpu():
    assert gpu_report.machine_facts(dry_run=True)["gpu"].endswith("(dry run)")
    assert gpu_report.machine_facts(dry_run=False, rehearsal=True)["gpu"].endswith("(rehearsal on the CPU)")
