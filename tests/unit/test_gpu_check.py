"""tools/gpu_check.py without a GPU: the plan, the deadline rules, the output layout, the dry run and the rehearsal,
and the imports of the gpu-check modules. Running steps (tools/gpu_steps.py), the output's parts (tools/gpu_report.py)
and carrying the wheels (tools/carry.py) have their own tests: test_gpu_steps.py, test_gpu_report.py, test_carry.py."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tarfile
from graphlib import TopologicalSorter
from pathlib import Path

from tools import gpu_check


def test_dry_run_checks_the_commands_and_writes_the_output_layout(tmp_path, capsys):
    out = tmp_path / "out"
    assert gpu_check.main([str(out), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "plan of phase 1 (deadline 300 s" in printed and "plan of phase 2 (deadline 450 s" in printed
    assert "budget" in printed and "device time: 900 s" in printed
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu-check.tar.gz", "log.txt", "summary.json", "summary.md"]  # flat: a device call returns it
    assert all(p.is_file() for p in out.iterdir())
    summary = json.loads((out / "summary.json").read_text())
    statuses = {o["name"]: o["status"] for o in summary["outcomes"]}
    assert statuses["install"] == statuses["smoke-nbval"] == statuses["full-02"] == "dry run"  # the priorities fit
    assert "tar -xzf" in summary["commit"] and "plan of phase 1" in (out / "log.txt").read_text()
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        assert "logs" in tar.getnames()
    # a shorter deadline: the later steps are skipped, with the reason
    assert gpu_check.main([str(tmp_path / "short"), "--dry-run", "--deadline-min", "4"]) == 0
    short = json.loads((tmp_path / "short" / "summary.json").read_text())
    # 240 s a phase: after the install (90 s) the nbval step (180 s) does not fit; phase 2 starts with full 02 (120 s)
    assert [o["status"] for o in short["outcomes"]][:3] == ["dry run", "skipped", "dry run"]
    assert short["outcomes"][1]["detail"] == "expected 180 s, 150 s left"


def test_the_documented_dry_run_uses_the_venv_not_the_system_python(tmp_path):
    """`./setup_venv.sh gpu-check OUT --dry-run` on a fresh clone: the system python3 may lack nbformat (the probes of
    run_tests and run_notebooks import it), so the dry run runs in the venv; only the device's phases use $PYTHON."""
    import os

    env = {**os.environ, "PYTHON": str(tmp_path / "no-such-python")}
    done = subprocess.run(["./setup_venv.sh", "gpu-check", str(tmp_path / "out"), "--dry-run"], cwd=gpu_check.ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    statuses = [o["status"] for o in json.loads((tmp_path / "out" / "summary.json").read_text())["outcomes"]]
    assert statuses[:4] == ["dry run"] * 4
    on_device = subprocess.run(["./setup_venv.sh", "gpu-check", str(tmp_path / "out2"), "--phase", "1"],
                               cwd=gpu_check.ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert on_device.returncode != 0 and "no-such-python" in on_device.stderr  # the device's own Python


def test_the_plan_runs_the_tools_as_the_issue_orders():
    steps = gpu_check.plan("/venv/bin/python", Path("/runs"), "NVIDIA H200")
    assert [s.name for s in steps] == ["install", "smoke-nbval", "full-02", "bench", "full-04", "full-05"]
    emulated = {s.name for s in steps if s.env.get("SMOL_EMULATE_T4") == "1"}
    assert emulated == {"smoke-nbval", "full-02", "full-04", "full-05"}  # the bench runs on the GPU as it is
    assert steps[2].references == [("02_lora_finetuning", "t4-emulated-h200")]
    assert steps[1].env["SMOL_TEST_WORKERS"] == "6" and "--notebooks-only" in steps[1].commands[0]
    assert all(c[1:3] == ["-m", c[2]] and c[2].startswith("tools.") for s in steps for c in s.commands)  # modules


def test_expected_times_come_from_a_measured_run_when_there_is_one(tmp_path):
    assert gpu_check.expected_times(tmp_path / "none.json")["bench"][1].startswith("budget")
    timings = tmp_path / "timings.json"
    timings.write_text(json.dumps({"date": "2027-01-01", "device": "NVIDIA H200", "seconds": {"bench": 42.0}}))
    times = gpu_check.expected_times(timings)
    assert times["bench"] == (42.0, "measured 2027-01-01 on NVIDIA H200") and times["install"][1].startswith("budget")


def test_the_device_time_plan_leaves_room_for_a_rerun_of_phase_1():
    d = gpu_check.DEVICE
    with_rerun = d["start"] + d["carry call"] + 2 * d["phase 1"] + gpu_check.phase_deadline("2") + d["margin"]
    assert with_rerun == d["session"] == 900
    assert gpu_check.phase_deadline("1") <= 300  # the issue's first call: at most 5 minutes
    # phase 2 after a rerun still holds full 02 at its budget; without one, the bench too
    assert gpu_check.phase_deadline("2") >= gpu_check.BUDGET["full-02"]
    assert gpu_check.phase_deadline("2", rerun=False) >= gpu_check.BUDGET["full-02"] + gpu_check.BUDGET["bench"]
    assert "150 s after a rerun of phase 1, 450 s without one" in gpu_check.budget()
    # the deadlines pack gives tools.carry.device_calls (tests/unit/test_carry.py checks the calls at these)
    assert (gpu_check.phase_deadline("1"), gpu_check.phase_deadline("2", rerun=False)) == (300, 450)


def test_the_gpu_check_modules_import_what_the_gpu_machine_has_and_form_a_dag():
    """They run on the GPU machine's own Python (no venv): at the top, the standard library and each other (carry's own
    imports are test_carry.py's); torch only inside machine_facts. The plan imports the runner and the output, the
    output the runner, and neither imports the plan."""
    ours, inner = {}, {}
    for name in ("gpu_check", "gpu_steps", "gpu_report"):
        tree = ast.parse((gpu_check.ROOT / "tools" / f"{name}.py").read_text(encoding="utf-8"))
        top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
        top |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
        ours[name] = {m for m in top if m.split(".")[0] not in sys.stdlib_module_names}
        every = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        every |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        inner[name] = every - top
    assert ours == {"gpu_check": {"tools.carry", "tools.gpu_steps", "tools.gpu_report"},
                    "gpu_report": {"tools.carry", "tools.gpu_steps"}, "gpu_steps": {"tools.carry"}}
    assert inner == {"gpu_check": set(), "gpu_report": {"torch"}, "gpu_steps": set()}
    edges = {name: {m.split(".")[1] for m in found if m.startswith("tools.")} for name, found in ours.items()}
    order = list(TopologicalSorter(edges).static_order())  # raises CycleError on a circle
    assert order.index("gpu_steps") < order.index("gpu_report") < order.index("gpu_check")


def test_device_label():
    assert gpu_check.device_label("NVIDIA H200") == "t4-emulated-h200"
    assert gpu_check.device_label("NVIDIA A100-SXM4-80GB") == "t4-emulated-a100-sxm4-80gb"


def test_the_rehearsal_runs_both_phases_for_real_on_this_cpu(tmp_path):
    """The cheap form of `./setup_venv.sh gpu-check OUT --rehearse` (minutes): one wheel carried (nbval, from the
    package registry), a copy of the working tree with it as .carry/, then both phases as device calls run them,
    through setup_venv.sh: install, nbval of 02 in the smoke profile from a runs folder outside the copy, full 02 cut
    to two training steps and saved as a reference, the bench for two steps. Fails on any broken step."""
    out = tmp_path / "out"
    done = subprocess.run(["./setup_venv.sh", "gpu-check", str(out), "--rehearse", "--only-wheels", "nbval"],
                          cwd=gpu_check.ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    first = json.loads((out / "phase-1" / "summary.json").read_text())
    second = json.loads((out / "phase-2" / "summary.json").read_text())
    assert [(o["name"], o["status"]) for o in first["outcomes"]] == [("install", "passed"), ("smoke-nbval", "passed")]
    assert [(o["name"], o["status"]) for o in second["outcomes"]] == [
        ("install", "passed"), ("full-02", "passed"), ("bench", "passed")]
    assert second["plan"][0]["source"].startswith("installed on this machine already")  # phase 2 kept the install
    for phase in ("phase-1", "phase-2"):
        assert sorted(p.name for p in (out / phase).iterdir()) == [
            "gpu-check.tar.gz", "log.txt", "pip-freeze.txt", "summary.json", "summary.md"]
    with tarfile.open(out / "phase-2" / "gpu-check.tar.gz") as tar:
        saved = json.load(tar.extractfile("data/reference/02_lora_finetuning/full-cpu-rehearsal/results.json"))
        assert "runs/smoke/02_lora_finetuning/results.json" not in tar.getnames()  # phase 1's runs, in phase 1's
    assert (saved["profile"], saved["steps"], saved["settings"]["max_steps"]) == ("full", 2, 2)
    with tarfile.open(out / "phase-1" / "gpu-check.tar.gz") as tar:
        smoke = json.load(tar.extractfile("runs/smoke/02_lora_finetuning/results.json"))
    assert smoke["profile"] == "smoke" and "nbval" in (out / "phase-1" / "pip-freeze.txt").read_text()
