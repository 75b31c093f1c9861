"""tools/execute.py: the one way a notebook is executed (the main job, the simulated Colab, the GPU check)."""

import subprocess
import sys

import nbformat

from tools import execute


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t")] + [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


def test_a_run_that_finishes_says_so_and_times_each_cell():
    nb = notebook("x = 2", "print(x * 21)")
    assert execute.Executor(nb, kernel_name="python3", timeout=60).run() is None
    assert nb.metadata[execute.RUN_KEY]["stopped"] is None and nb.metadata[execute.RUN_KEY]["seconds"] >= 0
    assert nb.cells[2].outputs[0]["text"] == "42\n"
    assert all(execute.cell_seconds(c) >= 0 for c in nb.cells[1:])
    assert execute.cell_seconds(nb.cells[0]) is None  # the markdown cell never ran


def test_a_run_stops_at_the_first_failing_cell_and_names_it():
    nb = notebook("print('first')", "raise ValueError('the data file is missing: run the cell above')",
                  "print('never')")
    stopped = execute.Executor(nb, kernel_name="python3", timeout=60).run()
    assert stopped["cell"] == 2 and stopped["exception"] == "CellExecutionError"
    assert "the data file is missing" in stopped["text"]
    assert nb.metadata[execute.RUN_KEY]["stopped"] == stopped
    assert [c.get("execution_count") for c in nb.cells[1:]] == [1, 2, None]
    assert execute.cell_seconds(nb.cells[3]) is None


def test_another_python_runs_the_file_alone(tmp_path):
    # The simulated Colab's python runs tools/execute.py as a file, with -P: nothing of this repository on its path.
    nbformat.write(notebook("x = 6", "print(x * 7)"), tmp_path / "in.ipynb")
    subprocess.run([sys.executable, "-P", execute.__file__, "in.ipynb", "out.ipynb", "60", "--echo"],
                   cwd=tmp_path, check=True, capture_output=True, text=True)
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.metadata[execute.RUN_KEY]["stopped"] is None and out.cells[2].outputs[0]["text"] == "42\n"


def test_cell_seconds_reads_nbclients_timing_record():
    cell = {"metadata": {"execution": {"iopub.execute_input": "2026-12-07T10:00:00.250Z",
                                       "shell.execute_reply": "2026-12-07T10:00:02.000Z"}}}
    assert execute.cell_seconds(cell) == 1.75
    assert execute.cell_seconds({"metadata": {"execution": {"iopub.execute_input": "2026-12-07T10:00:00Z"}}}) is None
