"""tools/references.py: the reference folders' layout and the table of runs ./setup_venv.sh run prints."""

import pytest

from helpers import results
from tools import references


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("SMOL_RUNS_DIR", str(tmp_path))
    return tmp_path


def test_reference_folder_is_profile_and_device_under_the_notebook(tmp_path):
    assert references.reference_folder("04_x", "full", "cpu-seed2", tmp_path) == (
        tmp_path / "data" / "reference" / "04_x" / "full-cpu-seed2")
    assert references.reference_folder("04_x", "smoke", "cpu").parent == results.REFERENCE_DIR / "04_x"


def test_summary_markdown_lists_every_run(runs):
    results.save_results("01_x", {"notebook": "01_x", "profile": "smoke", "device": "CPU", "engine": "plain",
                                   "train": {"seconds": 3.0, "peak_memory_mb": 9.0},
                                   "eval_loss": {"before": 2.0, "after": 1.5},
                                   "extended": {"bpc": {"before": 4.0, "after": 3.0}}})
    results.save_results("02_y", {"notebook": "02_y", "profile": "full"})
    table = references.summary_markdown().splitlines()
    assert len(table) == 4
    assert table[2] == "| 01_x | smoke | CPU | plain | 3.0 | 9.0 | eval_loss 2.0 -> 1.5; extended.bpc 4.0 -> 3.0 |"
    assert table[3].startswith("| 02_y | full | None | unsloth |")  # no engine recorded: a run on Unsloth


def test_notebook_reference_dirs_leave_out_the_recipes():
    found = references.notebook_reference_dirs()
    assert found, f"no notebook folder under {results.REFERENCE_DIR}"
    assert references.RECIPE_REFERENCE_DIR not in found and references.SPREAD_DIR not in found
    assert [p.name for p in found] == sorted(p.stem for p in (results.REPO_ROOT / "notebooks").glob("*.ipynb"))
