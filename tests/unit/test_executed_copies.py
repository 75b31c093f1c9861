"""The executed copies under notebooks/executed/: built from a reference run, and still the notebooks' code."""

import json
import re
import tempfile
from pathlib import Path

import pytest

from tools import save_reference, teaching_tables

ROOT = Path(__file__).resolve().parents[2]
# Three tests are parametrized over these: pytest.ini's empty_parameter_set_mark = fail_at_collect makes an empty glob
# fail at collection (pytest would skip them, "got empty parameter set").
COPIES = sorted(save_reference.EXECUTED_DIR.glob("*.ipynb"))


def code(source: str, outputs: list | None = None, tags: tuple = ()) -> dict:
    stamps = {"iopub.execute_input": "2026-12-02T10:00:00Z", "shell.execute_reply": "2026-12-02T10:00:01Z"}
    return {"cell_type": "code", "source": source, "outputs": outputs or [], "execution_count": 1,
            "metadata": {"execution": stamps, "tags": list(tags)}}


def test_an_executed_copy_says_what_it_is_and_keeps_the_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(save_reference, "ROOT", tmp_path)
    reference = tmp_path / "data" / "reference" / "01_full_finetuning" / "full-cpu" / "results.json"
    reference.parent.mkdir(parents=True)
    reference.write_text(json.dumps({"notebook": "01_full_finetuning", "profile": "full", "engine": "unsloth",
                                     "device": "CPU (2 cores)", "measured": "2026-12-02 on a 2-core CPU"}))
    printed = {"output_type": "stream", "name": "stdout", "text": "eval_loss 1.57\n"}
    widget = {"output_type": "display_data", "metadata": {},
              "data": {"text/plain": "VBox()", "application/vnd.jupyter.widget-view+json": {"model_id": "x"}}}
    fallback = {"output_type": "display_data", "metadata": {},
                "data": {"text/plain": "Playground()", "text/html": "<table>answers</table>",
                         "application/vnd.jupyter.widget-view+json": {"model_id": "y"}}}
    executed = tmp_path / "01.ipynb"
    executed.write_text(json.dumps({"metadata": {"widgets": {"state": "big"}}, "nbformat": 4, "nbformat_minor": 5,
                                    "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# 01 · Title\n"]},
                                              code('unpack_helpers("id", "' + "A" * 5000 + '")', tags=("bundle",)),
                                              code("print(eval_loss)", [printed]),
                                              code("playground.show()", [widget, printed, fallback])]}))
    nb = save_reference.executed_copy(executed, reference)
    header = "".join(nb["cells"][0]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown" and header.endswith("\n\n# 01 · Title\n")  # on top of the title
    for words in ("full-profile", "on 2026-12-02, on CPU (2 cores), unsloth engine",
                  "`measured` in `data/reference/01_full_finetuning/full-cpu/results.json`", "4-bit blocks, 8-bit"):
        assert words in header
    assert save_reference.own_text(nb["cells"][0]) == ["# 01 · Title\n"]
    assert "AAAA" not in json.dumps(nb) and "widgets" not in nb["metadata"]
    assert nb["cells"][2]["outputs"] == [printed]
    assert nb["cells"][3]["outputs"] == [printed, {"output_type": "display_data", "metadata": {}, "data": {
        "text/plain": "Playground()", "text/html": "<table>answers</table>"}}]
    assert all("execution" not in c["metadata"] for c in nb["cells"])
    assert save_reference.comparable_code(nb["cells"]) == ["<bundle>", "print(eval_loss)", "playground.show()"]
    # The notebook's text changes: the copy takes it and keeps its header.
    monkeypatch.setattr(save_reference, "ROOT", tmp_path)
    (tmp_path / "notebooks").mkdir()
    source = [{"cell_type": "markdown", "source": ["# 01 · New title\n"]}, *[{"cell_type": "code"}] * 3]
    (tmp_path / "notebooks" / "01_full_finetuning.ipynb").write_text(json.dumps({"cells": source}))
    assert save_reference.current_text(nb["cells"], "01_full_finetuning")
    assert "".join(nb["cells"][0]["source"]) == header.replace("# 01 · Title", "# 01 · New title")
    assert not save_reference.current_text(nb["cells"], "01_full_finetuning")


def test_the_drift_check_sees_a_changed_code_cell():
    notebook = [code("x = 1", tags=("bundle",)), {"cell_type": "markdown", "source": "## 2"}, code("LR = 1e-4")]
    copy = [code("# left out", tags=("bundle",)), {"cell_type": "markdown", "source": "## 2"}, code("LR = 1e-4")]
    assert save_reference.comparable_code(copy) == save_reference.comparable_code(notebook)
    copy[2] = code("LR = 2e-4")
    assert save_reference.comparable_code(copy) != save_reference.comparable_code(notebook)


@pytest.mark.parametrize("copy", COPIES, ids=[p.stem for p in COPIES])
def test_each_executed_copy_is_its_notebooks_code_and_reference(copy):
    nb = json.loads(copy.read_text(encoding="utf-8"))
    source = json.loads((ROOT / "notebooks" / copy.name).read_text(encoding="utf-8"))
    assert save_reference.comparable_code(nb["cells"]) == save_reference.comparable_code(source["cells"]), (
        f"{copy.relative_to(ROOT)} no longer runs the notebook's code: re-run it in the full profile and save it with "
        "python -m tools.save_reference --executed (or delete the copy)"
    )
    text = [save_reference.own_text(c) for c in nb["cells"] if c["cell_type"] == "markdown"]
    assert text == [c["source"] for c in source["cells"] if c["cell_type"] == "markdown"], (
        f"{copy.relative_to(ROOT)} shows old text: run python -m tools.save_reference --refresh-text"
    )
    header = nb["cells"][0]["metadata"][save_reference.HEADER_KEY]
    reference = ROOT / header.split("`measured` in `")[1].split("`")[0]
    run = json.loads(reference.read_text(encoding="utf-8"))
    assert run["profile"] == "full" and "variant" not in run and run["notebook"] == copy.stem
    assert header == save_reference.header(run, reference) and run["measured"][:10] in header
    assert all(c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"), "every code cell ran"


@pytest.mark.parametrize("copy", COPIES, ids=[p.stem for p in COPIES])
def test_each_executed_copy_fits_the_video_as_its_notebook_does(copy):
    # The header sits on top of the title cell: no extra cell, and few enough words for the main path's budget.
    from tests.unit.test_notebook_text import MAIN_CELLS, MAIN_WORDS, main_path_and_further, markdown_words

    main, _ = main_path_and_further(copy)
    assert len(main) <= MAIN_CELLS and markdown_words(main) <= MAIN_WORDS, (len(main), markdown_words(main))


def test_measurements_and_teaching_link_each_executed_copy():
    readme = (ROOT / "docs" / "MEASUREMENTS.md").read_text(encoding="utf-8")
    teaching = (ROOT / "notebooks" / "TEACHING.md").read_text(encoding="utf-8")
    copies = teaching_tables.executed_copies()
    assert copies, "no executed copy under notebooks/executed/"
    for name, path, kb in copies:
        assert f"[`{path}`](../{path}) ({kb} KB)" in readme
        assert f"(executed/{name}.ipynb) ({kb} KB)" in teaching


def test_plots_are_re_encoded_smaller_at_the_same_size():
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.imshow([[((i * 7) ^ (j * 13)) % 97 for j in range(120)] for i in range(80)], cmap="viridis")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    smaller = save_reference.smaller_png(encoded)
    assert len(smaller) < len(encoded)
    before, after = (Image.open(io.BytesIO(base64.b64decode(e))) for e in (encoded, smaller))
    assert after.size == before.size and after.format == "PNG"


# A path of the machine that made a file: /work/..., /root/..., C:\Users\... (save_reference.portable removes them).
MACHINE_PATH = re.compile(r"(?<![\w.~<>/-])(?:/(?:work|root|home|tmp|Users|content|opt|mnt|private|var)/|[A-Z]:\\\\)")


def test_no_committed_output_or_reference_carries_a_machine_path():
    files = COPIES + sorted((ROOT / "data" / "reference").rglob("*.json"))
    assert len(files) > 12, "no executed copies or references found"
    found = [f"{p.relative_to(ROOT)}: ...{m.string[max(0, m.start() - 30):m.end() + 30]}..." for p in files
             for m in MACHINE_PATH.finditer(p.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found[:20])


def test_portable_replaces_the_machines_folders(monkeypatch):
    # A repository outside the home and temporary folders (a clone under /tmp would turn its own name into <tmp>).
    root = Path("/srv/checkout")
    monkeypatch.setattr(save_reference, "ROOT", root)
    runs = root / "runs" / "exec"
    text = (f"writing to {runs / '01_x'}\nhelpers: {root / 'helpers'}\n"
            f"{Path.home() / '.cache' / 'model'}\n{root}ly stays\nscratch {Path(tempfile.gettempdir()) / 'x'}")
    assert save_reference.portable(text, runs=runs) == (
        f"writing to runs/01_x\nhelpers: <repository>/helpers\n~/.cache/model\n{root}ly stays\nscratch <tmp>/x")
    assert not MACHINE_PATH.search(save_reference.portable(text, runs=runs).replace(str(root), ""))


def test_a_run_made_in_another_worktree_prints_the_repository_too(tmp_path):
    # a reference run in `git worktree add` folder prints that folder's helpers path, which is the repository too
    import subprocess

    repo, tree = tmp_path / "repo", tmp_path / "tree"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run([*git, "worktree", "add", "-q", str(tree)], check=True)
    assert save_reference.worktrees(repo) == (str(repo.resolve()), str(tree.resolve()))
    assert save_reference.worktrees(tmp_path / "missing") == (str((tmp_path / "missing").resolve()),)


# Lines an executed copy may print on stderr, each with the words of its notebook's text that explain it. Every other
# stderr line is a warning nobody explains: fix it at its source (tests/unit/test_engine.py holds the import-time
# ones).
EXPLAINED = {
    r"Token indices sequence length is longer than the specified maximum": "`Token indices sequence length is longer",
    r"UserWarning: Model has `tie_word_embeddings=True` and a tied layer is part of": "`ensure_weight_tying`",
    r"^\s+warnings\.warn\(": "",  # the second line Python prints for every warning
}


def stderr_lines(nb: dict) -> list[str]:
    return [line for cell in nb["cells"] if cell["cell_type"] == "code" for out in cell.get("outputs", [])
            if out.get("name") == "stderr" for line in "".join(out["text"]).splitlines() if line.strip()]


@pytest.mark.parametrize("copy", COPIES, ids=[p.stem for p in COPIES])
def test_every_stderr_line_of_an_executed_copy_is_explained_by_its_text(copy):
    nb = json.loads(copy.read_text(encoding="utf-8"))
    text = " ".join(" ".join(save_reference.own_text(c)) for c in nb["cells"] if c["cell_type"] == "markdown")
    unexplained = [line for line in stderr_lines(nb)
                   if not any(re.search(p, line) and words in text for p, words in EXPLAINED.items())]
    assert not unexplained, "\n".join(unexplained)


def test_no_executed_cell_ends_in_an_objects_repr():
    reprs = re.compile(r"^\s*(?:\w+\(|<\w[\w.]* object at 0x|PosixPath\(|WindowsPath\()")
    found = [f"{p.stem} cell {i}: {''.join(out['data']['text/plain'])[:80]}" for p in COPIES
             for i, cell in enumerate(json.loads(p.read_text(encoding="utf-8"))["cells"])
             for out in cell.get("outputs", []) if out.get("output_type") == "execute_result"
             and reprs.match("".join(out["data"].get("text/plain", "")))]
    assert COPIES and not found, "\n".join(found)
