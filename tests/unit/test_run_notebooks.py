"""tools/run_notebooks.py, the main job's runner: choosing notebooks, expected times, progress lines."""

import json

import nbformat
import pytest

from tools import run_notebooks


def test_choose_by_number_and_all_by_default():
    assert [p.stem[:2] for p in run_notebooks.choose(["02", "5"])] == ["02", "05"]
    assert len(run_notebooks.choose([])) == 6


def test_choose_refuses_an_unknown_number_and_says_what_exists():
    with pytest.raises(SystemExit, match="choose from 01, 02, 03, 04, 05, 06"):
        run_notebooks.choose(["07"])


def test_expected_seconds_sums_the_reference_cell_times(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "reference" / "02_x" / "full-cpu"
    folder.mkdir(parents=True)
    (folder / "cell_times.json").write_text(json.dumps([{"seconds": 1.5}, {"seconds": 60.0}]))
    other = tmp_path / "data" / "reference" / "04_y" / "full-cpu"
    other.mkdir(parents=True)
    (other / "results.json").write_text(json.dumps({"measured": "2026-11-29 on a CPU: 1634 s for the whole notebook"}))
    monkeypatch.setattr(run_notebooks, "ROOT", tmp_path)
    assert run_notebooks.expected_seconds("02_x", "full", "cpu") == 61.5
    assert run_notebooks.expected_seconds("04_y", "full", "cpu") == 1634.0
    assert run_notebooks.expected_seconds("02_x", "full", "gpu") is None


def test_every_notebook_has_a_committed_cpu_time_for_both_profiles():
    for path in run_notebooks.NOTEBOOKS:
        for profile in ("smoke", "full"):
            assert run_notebooks.expected_seconds(path.stem, profile, "cpu"), (path.stem, profile)


def test_clock():
    assert [run_notebooks.clock(s) for s in (None, 5, 725, 3725)] == ["?", "0:05", "12:05", "1:02:05"]


def test_progress_lines_name_sections_print_text_and_training_steps(capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("## 1 · Set-up\ntext"),
        nbformat.v4.new_code_cell("a = 1"),
        nbformat.v4.new_code_cell("b = 2"),
        nbformat.v4.new_markdown_cell("## 2 · Train"),
        nbformat.v4.new_code_cell("train()"),
    ]
    client = run_notebooks.WatchedClient(nb, kernel_name="python3")
    assert client.section_of == {1: "1 · Set-up", 4: "2 · Train"}
    client.clear_before_next_output = False  # as execute_cell() sets it
    client._cell_start(nb.cells[4], 4)
    cell = nb.cells[4]
    def message(kind: str, content: dict) -> dict:
        return {"msg_type": kind, "header": {"msg_type": kind}, "parent_header": {}, "metadata": {}, "content": content}

    stream = message("stream", {"name": "stdout", "text": "loss 2.1\n"})
    bar = message("display_data", {"data": {"text/html": "<progress value='60' max='60'></progress>"
                                                          "[60/60 00:10, Epoch 4/5]"}, "metadata": {}})
    evaluation = message("display_data", {"data": {"text/html": "<progress value='11' max='10'></progress>"
                                                                 "[10/10 00:01]"}, "metadata": {}})
    client.process_message(stream, cell, 4)
    client.process_message(bar, cell, 4)
    client.process_message(evaluation, cell, 4)
    printed = capsys.readouterr().out
    assert "2 · Train" in printed and "loss 2.1" in printed and "training: step 60/60" in printed
    assert "evaluating: batch 10/10" in printed and "step 11/10" not in printed
    assert cell.outputs[0]["text"] == "loss 2.1\n"  # nbclient still records the output in the notebook
