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
    monkeypatch.setattr(run_notebooks.references, "ROOT", tmp_path)
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


def test_a_finished_bar_redrawn_by_later_log_lines_is_said_once(capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## 2 · Train"), nbformat.v4.new_code_cell("train()")]
    client = run_notebooks.WatchedClient(nb, kernel_name="python3")
    client.clear_before_next_output = False
    cell = nb.cells[1]

    def bar(value: int) -> dict:
        content = {"data": {"text/html": f"<progress value='{value}' max='10'></progress>[{value}/10, Epoch 1/1]"},
                   "metadata": {}}
        return {"msg_type": "update_display_data", "header": {"msg_type": "update_display_data"},
                "parent_header": {}, "metadata": {}, "content": content}

    for value in (10, 10, 10, 10):  # the Trainer redraws its finished bar with each later log line
        client.process_message(bar(value), cell, 1)
    assert capsys.readouterr().out.count("training: step 10/10") == 1
    client.process_message(bar(10), cell, 3)  # another cell's bar that ends the same way is new news
    assert capsys.readouterr().out.count("training: step 10/10") == 1


def test_the_kernel_is_asked_for_encryption_where_it_can_have_it():
    # ipykernel 7.3+ warns at every start of a kernel talking plain TCP; with CurveZMQ keys it does not.
    import zmq

    client = run_notebooks.WatchedClient(nbformat.v4.new_notebook(), kernel_name="python3")
    km = client.create_kernel_manager()
    if "transport_encryption" in km.trait_names() and zmq.has("curve"):
        assert km.transport_encryption == "auto"
    else:
        pytest.skip("this jupyter_client or pyzmq has no transport encryption")


def test_training_lines_carry_the_trainers_estimate_until_the_bar_is_full(capsys):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## 2 · Train"), nbformat.v4.new_code_cell("train()")]
    client = run_notebooks.WatchedClient(nb, kernel_name="python3")
    client.clear_before_next_output = False
    labels = ("[ 1/10 : < :, Epoch 0/1]", "[ 5/10 00:41 < 02:45, 0.48 it/s, Epoch 0.5/1]", "[10/10 01:20, Epoch 1/1]")
    for label in labels:
        value = label.split("/")[0].strip("[ ")
        html = f"<progress value='{value}' max='10'></progress>{label}"
        client.last_step_print = 0.0  # as if 20 s had passed
        client.process_message({"msg_type": "display_data", "header": {"msg_type": "display_data"},
                                "parent_header": {}, "metadata": {}, "content": {"data": {"text/html": html},
                                                                                 "metadata": {}}}, nb.cells[1], 1)
    lines = capsys.readouterr().out.splitlines()
    assert [line.strip() for line in lines] == [
        "training: step 1/10", "training: step 5/10 (the Trainer expects 02:45 more)", "training: step 10/10"]


def test_the_time_left_scales_the_reference_cells_still_to_run_by_this_machines_pace():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("## 1 · Load"), nbformat.v4.new_code_cell("model = load()"),
                nbformat.v4.new_markdown_cell("## 2 · Train"), nbformat.v4.new_code_cell("# comment\ntrain()"),
                nbformat.v4.new_code_cell("new_cell()")]
    reference = [{"cell": "model = load()", "seconds": 40.0}, {"cell": "train()", "seconds": 100.0},
                 {"cell": "removed()", "seconds": 7.0}]
    client = run_notebooks.WatchedClient(nb, reference_cells=reference, kernel_name="python3")
    assert client.reference == {1: 40.0, 3: 100.0}  # matched by first line; a cell without a reference has none
    assert client.estimate(3) == ""  # nothing finished yet: no judgement
    client.took = {"here": 60.0, "reference": 40.0}  # the load took 60 s here, 40 s there
    assert client.estimate(3) == "about 2:30 left (this machine has taken 1.5x the reference run's time so far)"
    client.took = {"here": 10.0, "reference": 20.0}  # too little reference time to judge the machine by
    assert client.estimate(3) == ""


def test_each_finished_cell_with_a_reference_time_counts_towards_the_pace(monkeypatch):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("model = load()"), nbformat.v4.new_code_cell("other()")]
    client = run_notebooks.WatchedClient(nb, reference_cells=[{"cell": "model = load()", "seconds": 40.0}],
                                         kernel_name="python3")
    clock = iter([100.0, 145.0, 200.0, 230.0])
    monkeypatch.setattr(run_notebooks.time, "monotonic", lambda: next(clock))
    for index in (0, 1):
        client._cell_start(nb.cells[index], index)
        client._cell_done(nb.cells[index], index, None)
    assert client.took == {"here": 45.0, "reference": 40.0}  # the unmatched cell's 30 s are left out


def test_every_notebook_takes_settings_for_one_run_where_results_json_records_them():
    """--set (the GPU check's rehearsal, tools/spread.py's variants): the assignment lands after the smoke block and
    before SETTINGS, in every notebook."""
    for path in run_notebooks.choose([]):
        nb = run_notebooks.with_settings(nbformat.read(path, as_version=4), ["MAX_STEPS=2"])
        settings = next(c.source for c in nb.cells if run_notebooks.SETTINGS_END in c.source)
        assert f"MAX_STEPS = 2\n{run_notebooks.SETTINGS_END}" in settings
        assert settings.index("MAX_STEPS = 2") > settings.find('PROFILE == "smoke"')


def test_assignments_go_after_the_smoke_block_and_before_settings_are_recorded():
    nb = nbformat.read(run_notebooks.NOTEBOOKS[0], as_version=4)
    changed = run_notebooks.with_settings(nb, ["SEED=1", "LEARNING_RATE = 0"])
    [cell] = [c for c in changed.cells if c.cell_type == "code" and run_notebooks.SETTINGS_END in c.source]
    lines = cell.source.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith(run_notebooks.SETTINGS_END))
    assert lines[end - 2:end] == ["SEED = 1", "LEARNING_RATE = 0"]
    assert next(i for i, line in enumerate(lines) if line.startswith('if PROFILE == "smoke":')) < end
    assert "set_seed(SEED)" in "\n".join(lines[end:])  # the new seed is the one set


def test_a_notebook_without_one_settings_cell_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    with pytest.raises(SystemExit, match="one Settings cell"):
        run_notebooks.with_settings(nb, ["SEED=1"])
