"""tools/gpu_check.py without a GPU: the plan, the deadline rules, stopping a step, the output layout, and carrying
wheels in parts (packing, joining, what is left out)."""

from __future__ import annotations

import json
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tools import gpu_check


def step(name, expected, required=False, commands=None):
    return gpu_check.Step(name, name, commands or [[sys.executable, "-c", "pass"]], {}, expected, "budget",
                          required=required)


def fake_runner(seconds, statuses, now):
    def run(s, left):
        took = min(seconds[s.name], left)
        now[0] += took
        return statuses.get(s.name, "passed"), took, ""
    return run


def test_walk_starts_a_step_only_if_it_fits_and_a_failed_install_stops_the_rest():
    steps = [step("install", 10, required=True), step("a", 30), step("b", 50), step("c", 5)]
    now = [0.0]
    outcomes = gpu_check.walk(steps, 60, fake_runner({"install": 10, "a": 20, "b": 50, "c": 5}, {}, now),
                              lambda: now[0])
    assert [(o.name, o.status) for o in outcomes] == [
        ("install", "passed"), ("a", "passed"), ("b", "skipped"), ("c", "passed")]  # b: 50 s > 30 left; c fits
    now = [0.0]
    outcomes = gpu_check.walk(steps, 60, fake_runner({"install": 3, "a": 1, "b": 1, "c": 1}, {"install": "failed"},
                                                     now), lambda: now[0])
    assert [o.status for o in outcomes] == ["failed", "skipped", "skipped", "skipped"]
    assert outcomes[1].detail == "install did not pass"


def test_a_step_running_at_the_deadline_is_stopped_with_all_its_processes(tmp_path):
    sleeper = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    s = step("slow", 1, commands=[sleeper, sleeper])
    start = time.monotonic()
    status, seconds, _ = gpu_check.run_commands(s, 2, tmp_path)
    assert status == "stopped at the deadline" and time.monotonic() - start < 20
    assert (tmp_path / "slow-0.log").read_text().startswith("started")  # what it wrote before is kept
    status, _, detail = gpu_check.run_commands(step("quick", 1, commands=[[sys.executable, "-c", "exit(3)"]]), 30,
                                               tmp_path)
    assert status == "failed" and "3" in detail


def test_dry_run_checks_the_commands_and_writes_the_output_layout(tmp_path, capsys):
    out = tmp_path / "out"
    assert gpu_check.main([str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "plan (deadline 540 s" in printed and "budget" in printed
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu-check.tar.gz", "log.txt", "summary.json", "summary.md"]  # flat: a device call returns it
    assert all(p.is_file() for p in out.iterdir())
    summary = json.loads((out / "summary.json").read_text())
    statuses = {o["name"]: o["status"] for o in summary["outcomes"]}
    assert statuses["install"] == statuses["smoke-nbval"] == statuses["full-02"] == "dry run"  # the priorities fit
    assert "tar -xzf" in summary["commit"] and "plan (deadline" in (out / "log.txt").read_text()
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        assert "logs" in tar.getnames()
    # a shorter deadline: the later steps are skipped, with the reason
    assert gpu_check.main([str(tmp_path / "short"), "--dry-run", "--deadline-min", "4"]) == 0
    short = json.loads((tmp_path / "short" / "summary.json").read_text())
    # 240 s: after the install (90 s) the nbval step (180 s) does not fit, full 02 (120 s) still does
    assert [o["status"] for o in short["outcomes"]][:3] == ["dry run", "skipped", "dry run"]
    assert short["outcomes"][1]["detail"] == "expected 180 s, 150 s left"


def test_dry_run_catches_a_typo_in_a_command():
    assert gpu_check.check_command([sys.executable, "tools/bench.py", "--steps", "20"]) == []
    assert gpu_check.check_command([sys.executable, "tools/bench.py", "--stepz", "20"])  # argparse refuses it
    assert gpu_check.check_command([sys.executable, "tools/run_notebooks.py", "02"]) == []
    assert gpu_check.check_command([sys.executable, "tools/run_tests.py", "--notebooks-only"]) == []
    assert gpu_check.check_command([sys.executable, "tools/nope.py"]) == ["tools/nope.py does not exist"]


def test_the_plan_runs_the_tools_as_the_issue_orders():
    steps = gpu_check.plan("/venv/bin/python", Path("/runs"), "NVIDIA H200")
    assert [s.name for s in steps] == ["install", "smoke-nbval", "full-02", "bench", "full-04", "full-05"]
    emulated = {s.name for s in steps if s.env.get("SMOL_EMULATE_T4") == "1"}
    assert emulated == {"smoke-nbval", "full-02", "full-04", "full-05"}  # the bench runs on the GPU as it is
    assert steps[2].references == [("02_lora_finetuning", "t4-emulated-h200")]
    assert steps[1].env["SMOL_TEST_WORKERS"] == "6" and "--notebooks-only" in steps[1].commands[0]


def test_expected_times_come_from_a_measured_run_when_there_is_one(tmp_path):
    assert gpu_check.expected_times(tmp_path / "none.json")["bench"][1].startswith("budget")
    timings = tmp_path / "timings.json"
    timings.write_text(json.dumps({"date": "2027-01-01", "device": "NVIDIA H200", "seconds": {"bench": 42.0}}))
    times = gpu_check.expected_times(timings)
    assert times["bench"] == (42.0, "measured 2027-01-01 on NVIDIA H200") and times["install"][1].startswith("budget")


def test_parts_split_big_wheels_and_join_them_again(tmp_path, monkeypatch):
    monkeypatch.setattr(gpu_check, "CARRY", tmp_path / "carry")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "big-1.0-py3-none-any.whl").write_bytes(bytes(range(256)) * 40)  # 10,240 bytes: three chunks of 4,096
    (wheels / "small-1.0-py3-none-any.whl").write_bytes(b"x" * 100)
    parts = gpu_check.split_parts(sorted(wheels.glob("*.whl")), limit=4096)
    assert all(sum(e["size"] for e in part) <= 4096 for part in parts)
    assert sum(e["name"].startswith("big") for part in parts for e in part) == 3
    assert len(parts) == 3  # first fit: the small wheel shares the part of the big one's last chunk
    made = gpu_check.write_parts(parts)
    joined = gpu_check.assemble(tmp_path / "joined")
    assert sorted(p.read_bytes() for p in joined) == sorted(p.read_bytes() for p in wheels.glob("*.whl"))
    # a part lost with a machine that went back: the message names what to carry again
    import shutil

    shutil.rmtree(made[0])
    with pytest.raises(SystemExit, match=r"parts \[1\] of \d are not on this machine.*carry \.carry/gpu-check-1"):
        gpu_check.assemble(tmp_path / "again")


def test_only_what_the_machine_lacks_is_carried():
    wheels = [Path(n) for n in ("trl-1.15.0-py3-none-any.whl", "tokenizers-0.23.3-cp310-abi3-x.whl",
                                "transformers-5.17.0-py3-none-any.whl", "jinja2-3.1.6-py3-none-any.whl",
                                "torch-2.11.0-py3-none-any.whl", "dill-0.4.0-py3-none-any.whl")]
    pins = ["trl==1.15.0", "tokenizers==0.23.3", "transformers==5.17.0"]
    have = {"tokenizers": "0.23.2", "transformers": "5.17.0", "jinja2": "", "torch": "2.11.0"}
    kept = [w.name.split("-")[0] for w in gpu_check.to_carry(wheels, pins, have)]
    assert kept == ["trl", "tokenizers", "dill"]  # tokenizers: pinned at another version than the machine's


def test_device_calls_carry_each_part_then_run_the_check():
    parts = [gpu_check.ROOT / ".carry" / f"gpu-check-{n}" for n in (1, 2, 3)]
    calls = gpu_check.device_calls(parts)
    assert len(calls) == 3 and '"./setup_venv.sh gpu-check $OUT"' not in calls[0]
    assert calls[-1].startswith('run(command="./setup_venv.sh gpu-check $OUT", carry=[".carry/gpu-check-3"]')


def test_device_label():
    assert gpu_check.device_label("NVIDIA H200") == "t4-emulated-h200"
    assert gpu_check.device_label("NVIDIA A100-SXM4-80GB") == "t4-emulated-a100-sxm4-80gb"
