"""What pytest.ini and tests/conftest.py make of a plain `pytest`: a bare run from the root is refused (the suite is
./setup_venv.sh test), the executed copies are never collected, a named path runs as before, and a parametrize over
a glob that found nothing fails instead of skipping."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def pytest_in(cwd: Path, *args: str) -> tuple[int, str, float]:
    """(exit code, output, seconds) of `python -m pytest ARGS` started in `cwd`."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def test_a_bare_pytest_from_the_root_is_refused_at_once():
    for args in ([], ["."], ["-q"]):
        code, output, seconds = pytest_in(ROOT, *args)
        assert code == 4, (args, output[-2000:])  # pytest's usage error: nothing collected, nothing run
        assert "./setup_venv.sh test" in output and "pytest tests/unit" in output, output[-2000:]
        assert "collected" not in output and seconds < 60, (args, seconds)


def test_collecting_the_notebooks_leaves_out_the_executed_copies():
    code, output, _ = pytest_in(ROOT, "--collect-only", "-q", "notebooks")
    assert code == 0, output[-2000:]
    collected = {line.split("::")[0] for line in output.splitlines() if "::" in line}
    assert collected == {f"notebooks/{p.name}" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}, collected
    assert collected and "executed" not in output


def test_the_suites_own_sessions_still_collect(tmp_path):
    # tools/run_tests.py names the configuration and root and passes paths: a unit test file, and a notebook copied
    # into a folder of its own (inside runs/, or outside the repository as in gpu_check's runs folder).
    config = ["-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT), "--collect-only", "-q"]
    code, output, _ = pytest_in(ROOT, *config, "tests/unit/test_pytest_config.py")
    assert code == 0 and "test_a_bare_pytest_from_the_root_is_refused_at_once" in output, output[-2000:]
    copy = tmp_path / "01_full_finetuning.ipynb"
    copy.write_bytes((ROOT / "notebooks" / copy.name).read_bytes())
    code, output, _ = pytest_in(ROOT, *config, str(copy))
    assert code == 0 and "::Cell 0" in output and "executed" not in output, output[-2000:]  # its cells, under nbval


def test_a_parametrize_over_an_empty_glob_fails(tmp_path):
    test = tmp_path / "test_empty.py"
    test.write_text("import pytest\nfrom pathlib import Path\n\n\n"
                    "@pytest.mark.parametrize('path', sorted(Path(__file__).parent.glob('*.nothing')))\n"
                    "def test_each(path):\n    pass\n", encoding="utf-8")
    code, output, _ = pytest_in(ROOT, "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT), "-q", str(test))
    assert code != 0 and "Empty parameter set in 'test_each'" in output, output[-2000:]
