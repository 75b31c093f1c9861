"""tools/teaching_tables.py: notebooks/TEACHING.md's measured block per notebook."""

import json

from helpers import results
from tools import teaching_tables


def test_teaching_guide_has_a_measured_block_per_notebook():
    guide = teaching_tables.TEACHING.read_text(encoding="utf-8")
    notebooks = sorted(p.stem for p in (teaching_tables.ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks, f"no notebooks/*.ipynb under {teaching_tables.ROOT}"
    for notebook in notebooks:
        assert f"<!-- measured:{notebook}:start -->" in guide, notebook
        block = teaching_tables.notebook_block(notebook)
        assert "full-cpu" in block and "whole notebook" in block, notebook


def test_teaching_cell_times_name_todays_sections(tmp_path, monkeypatch):
    def cell(kind, text):
        return {"cell_type": kind, "source": [text], "metadata": {}}

    (tmp_path / "notebooks").mkdir()
    layout = [cell("markdown", "## 3 · Train"), cell("code", "trainer.train()"), cell("code", "slow()")]
    (tmp_path / "notebooks" / "07_x.ipynb").write_text(json.dumps({"cells": layout}), encoding="utf-8")
    folder = tmp_path / "data" / "reference" / "07_x" / "full-cpu"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"device": "CPU (2 cores)", "profile": "full"}), encoding="utf-8")
    times = [{"section": "5 · Train", "cell": "trainer.train()", "seconds": 60.0},
             {"section": "6 · Gone", "cell": "merged_away()", "seconds": 9.0}]
    (folder / "cell_times.json").write_text(json.dumps(times), encoding="utf-8")
    monkeypatch.setattr(teaching_tables, "ROOT", tmp_path)
    monkeypatch.setattr(results, "REFERENCE_DIR", tmp_path / "data" / "reference")
    block = teaching_tables.notebook_block("07_x")
    assert "| 3 · Train | `trainer.train()` | 60 |" in block  # today's heading, the reference run's time
    assert "| 6 · Gone (earlier layout) | `merged_away()` | 9 |" in block and "*(earlier layout)*" in block
