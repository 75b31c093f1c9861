"""tools/run_tests.py: the suite's scheduling and its closing line."""

from tools import run_tests


def test_counts_reads_pytest_closing_lines():
    assert run_tests.counts("...\n==== 3 passed, 1 failed, 2 skipped in 2.01s ====\n") == {
        "passed": 3, "failed": 1, "skipped": 2}
    assert run_tests.counts("== 1 failed, 4 passed, 2 errors in 9.9s ==") == {"failed": 1, "passed": 4, "errors": 2}
    assert run_tests.counts("7 passed in 1.0s\nseconds per test file\n 3.0  x.ipynb") == {"passed": 7}
    assert run_tests.counts("ERROR: file or directory not found: nope") == {}


def test_two_notebooks_at_a_time_share_the_cores():
    assert run_tests.workers_and_threads(2, {}) == (2, 1)
    assert run_tests.workers_and_threads(8, {}) == (2, 4)
    assert run_tests.workers_and_threads(1, {}) == (1, 1)
    assert run_tests.workers_and_threads(2, {"SMOL_TEST_WORKERS": "1"}) == (1, 2)


def test_choose_by_number_and_longest_first():
    assert [p.stem for p in run_tests.choose(["2", "05"])] == ["02_lora_finetuning", "05_cpt_hindi"]
    assert len(run_tests.choose([])) == 6
    # the committed smoke references time every notebook, so the order is known before a run
    assert all(run_tests.smoke_seconds(p.stem) > 0 for p in run_tests.choose([]))


def test_a_failed_session_fails_the_suite(capsys):
    suite = run_tests.Suite({})
    suite.steps = [("unit tests", 1.0, 0), ("01_full_finetuning", 2.0, 1)]
    suite.totals = {"passed": 5, "failed": 1}
    assert suite.report(0.0) == 1
    assert "5 passed, 1 failed" in capsys.readouterr().out.splitlines()
    suite.steps, suite.totals = [("unit tests", 1.0, 0)], {"passed": 5}
    assert suite.report(0.0) == 0


def test_a_notebook_whose_runs_folder_is_outside_the_repository_runs_under_nbval(tmp_path, capsys):
    """gpu_check puts the runs under the system's temp folder: the copied notebook must still be collected, with the
    repository's pytest.ini (--nbval-lax), and its cells run."""
    import os

    import nbformat

    notebook = tmp_path / "source" / "tiny.ipynb"
    notebook.parent.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nprint(os.getcwd())\nx = 6 * 7"),
                nbformat.v4.new_code_cell("assert x == 42")]
    nbformat.write(nb, notebook)
    runs = tmp_path / "runs"
    assert not runs.is_relative_to(run_tests.ROOT)
    suite = run_tests.Suite({**os.environ, "OMP_NUM_THREADS": "1"})
    suite.in_parallel([notebook], runs, 1, 1, unit=False)
    assert suite.report(0.0) == 0
    assert suite.totals == {"passed": 2}  # both cells, as nbval items
    assert "configfile: pytest.ini" in (runs / "notebooks-alone" / "tiny.log").read_text()  # the repository's
