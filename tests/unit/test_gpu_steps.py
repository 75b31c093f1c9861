"""tools/gpu_steps.py: steps run in order while they fit before a deadline, a step running at the deadline stopped with
all its processes, and the dry run's check of each command."""

from __future__ import annotations

import sys
import time

from tools import gpu_steps


def step(name, expected, required=False, commands=None):
    return gpu_steps.Step(name, name, commands or [[sys.executable, "-c", "pass"]], {}, expected, "budget",
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
    outcomes = gpu_steps.walk(steps, 60, fake_runner({"install": 10, "a": 20, "b": 50, "c": 5}, {}, now),
                              lambda: now[0])
    assert [(o.name, o.status) for o in outcomes] == [
        ("install", "passed"), ("a", "passed"), ("b", "skipped"), ("c", "passed")]  # b: 50 s > 30 left; c fits
    now = [0.0]
    outcomes = gpu_steps.walk(steps, 60, fake_runner({"install": 3, "a": 1, "b": 1, "c": 1}, {"install": "failed"},
                                                     now), lambda: now[0])
    assert [o.status for o in outcomes] == ["failed", "skipped", "skipped", "skipped"]
    assert outcomes[1].detail == "install did not pass"


def test_a_step_running_at_the_deadline_is_stopped_with_all_its_processes(tmp_path):
    sleeper = [sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"]
    s = step("slow", 1, commands=[sleeper, sleeper])
    start = time.monotonic()
    status, seconds, _ = gpu_steps.run_commands(s, 2, tmp_path)
    assert status == "stopped at the deadline" and time.monotonic() - start < 20
    assert (tmp_path / "slow-0.log").read_text().startswith("started")  # what it wrote before is kept
    status, _, detail = gpu_steps.run_commands(step("quick", 1, commands=[[sys.executable, "-c", "exit(3)"]]), 30,
                                               tmp_path)
    assert status == "failed" and "3" in detail


def test_the_dry_runner_advances_a_simulated_clock_and_fails_a_broken_command():
    now = [0.0]
    run = gpu_steps.dry_runner(now)
    good = step("good", 40, commands=[[sys.executable, "-m", "tools.bench", "--steps", "20"]])
    assert run(good, 100) == ("dry run", 40, "commands checked; not run") and now == [40.0]
    assert run(good, 30)[0] == "stopped at the deadline" and now == [70.0]  # it would run past the deadline
    status, _, detail = run(step("typo", 5, commands=[[sys.executable, "-m", "tools.nope"]]), 100)
    assert status == "failed" and detail == "tools.nope does not exist (tools/nope.py)"


def test_dry_run_catches_a_typo_in_a_command():
    assert gpu_steps.check_command([sys.executable, "-m", "tools.bench", "--steps", "20"]) == []
    assert gpu_steps.check_command([sys.executable, "-m", "tools.bench", "--stepz", "20"])  # argparse refuses it
    assert gpu_steps.check_command([sys.executable, "-m", "tools.run_notebooks", "02"]) == []
    assert gpu_steps.check_command([sys.executable, "-m", "tools.run_tests", "--notebooks-only"]) == []
    missing = gpu_steps.check_command([sys.executable, "-m", "tools.nope"])
    assert missing == ["tools.nope does not exist (tools/nope.py)"]
    assert gpu_steps.check_command([sys.executable, "tools/bench.py"])  # a tool runs as a module, not as a script
    assert gpu_steps.check_command([sys.executable, "-m", "tools.gpu_check", "instal"]) == [
        "unknown gpu_check call ['instal']"]
