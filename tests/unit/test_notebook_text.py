"""The notebooks as a reader meets them: structure a presenter can follow (measured numbers in their text:
test_notebook_numbers.py)."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_presenter_can_walk_through_it(path):
    found = cells(path)
    sources = [(cell["cell_type"], "".join(cell["source"])) for cell in found]
    collapsed = [cell.get("metadata", {}).get("cellView") == "form" for cell in found]  # set-up plumbing on Colab
    run = 0
    for index, ((kind, _), form) in enumerate(zip(sources, collapsed)):
        run = run + 1 if kind == "code" and not form else 0
        assert run <= 2, f"cell {index}: more than two code cells in a row without markdown"
    forms = [form for (kind, _), form in zip(sources, collapsed) if kind == "code"]
    records = [form for (kind, text), form in zip(sources, collapsed) if kind == "code" and "results.record(" in text]
    assert forms[:3] == [True] * 3 and records == [True], "the three set-up cells and the record cell are collapsed"
    assert sum(forms) == 4, "only the three set-up cells and the one results.record cell are collapsed"
    titled = [text.startswith("#@title") for (kind, text), form in zip(sources, collapsed) if kind == "code" and form]
    assert all(titled), "a collapsed cell starts with a #@title line, which Colab shows in place of its code"
    lines = [line for kind, text in sources if kind == "markdown" for line in text.splitlines()]
    headings = [line for line in lines if line.startswith("## ")]
    for part in ("When to use", "Best practices and common pitfalls", "Exercises"):
        assert any(part in h for h in headings), f"no '## ... {part}' section"
    exercises = next(text for kind, text in sources if kind == "markdown" and "## " in text and "Exercises" in text)
    exercises = exercises[exercises.index("Exercises"):]
    for tier in ("Easy", "Medium", "Hard"):
        assert re.search(rf"\b{tier}\b", exercises, re.IGNORECASE), f"exercises lack the {tier} tier"
    assert re.search(r"expect", exercises, re.IGNORECASE), "exercises say what to expect"
    assert not any(kind == "code" and text.strip() == "playground.on_click()" for kind, text in sources), \
        "the playground answers once through playground.show(), in the cell that builds it"
    assert not any(kind == "code" and text.lstrip().startswith("RESULTS = {") for kind, text in sources), \
        "results bookkeeping is one results.record(...) call"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_cell_has_its_own_id(path):
    # nbformat 4.5 requires cell ids: without them every run prints "MissingIDFieldWarning: Cell is missing an id
    # field" (the main job's output, ./setup_venv.sh run), and a future nbformat refuses the notebook
    import nbformat

    notebook = json.loads(path.read_text(encoding="utf-8"))
    ids = [c.get("id") for c in notebook["cells"]]
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: cells without an id, or ids used twice"
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), as_version=nbformat.NO_CONVERT))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_committed_notebooks_carry_no_outputs(path):
    """Notebooks are committed stripped (executed copies go to runs/): an output, an execution count or widget state
    left in a commit fails here. Strip with: jupyter nbconvert --clear-output --inplace notebooks/<notebook>.ipynb"""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(notebook["cells"]) if c.get("outputs") or c.get("execution_count") is not None]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs; strip them before committing"
    assert "widgets" not in notebook.get("metadata", {}), f"{path.name}: widget state in the notebook's metadata"


# Issue 25: the path a student runs top to bottom fits a 25-40 minute video; deep-dive extras go to an optional
# "## Going further" part at the end.
MAIN_CELLS, MAIN_WORDS, FURTHER_WORDS = 42, 2800, 1200


def main_path_and_further(path: Path) -> tuple[list[dict], list[dict]]:
    """The cells before the '## Going further' heading, and those from it on."""
    found = cells(path)
    starts = [i for i, c in enumerate(found)
              if c["cell_type"] == "markdown" and "".join(c["source"]).startswith("## Going further")]
    return (found, []) if not starts else (found[: starts[0]], found[starts[0]:])


def markdown_words(found: list[dict]) -> int:
    return sum(len("".join(c["source"]).split()) for c in found if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name[:2])
def test_the_main_path_fits_a_video(path):
    main, further = main_path_and_further(path)
    assert len(main) <= MAIN_CELLS, f"{len(main)} cells before 'Going further' (at most {MAIN_CELLS})"
    assert markdown_words(main) <= MAIN_WORDS, f"{markdown_words(main)} markdown words in the main path"
    assert further and markdown_words(further) <= FURTHER_WORDS, "an optional 'Going further' part, short"
    assert not any(c["cell_type"] == "code" for c in further[:1]), "Going further opens with what it is"


def test_main_path_counter_sees_a_going_further_part(tmp_path):
    def cell(kind, text):
        return {"cell_type": kind, "source": [text], "metadata": {}}
    notebook = {"cells": [cell("markdown", "# title words here"), cell("code", "x = 1"),
                          cell("markdown", "## Going further (optional)\nmore words"), cell("code", "y = 2")]}
    path = tmp_path / "99_x.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    main, further = main_path_and_further(path)
    assert (len(main), len(further), markdown_words(main), markdown_words(further)) == (2, 2, 4, 6)


SEGMENTS = ("introduction and context", "when to use it and when not", "code walkthrough", "technical deep dive",
            "best practices and pitfalls", "results and what they mean")


def guide_tables(text: str) -> dict[str, list[list[str]]]:
    """Each notebook's six-segment table in TEACHING.md, as rows of cells, by notebook number."""
    tables = {}
    for part in re.split(r"^## (?=\d\d · )", text, flags=re.MULTILINE)[1:]:
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in part.splitlines()
                if re.match(r"\| \d [a-z]", line)]  # "| 1 introduction and context | ...", not the cell-time rows
        tables[part[:2]] = rows
    return tables


def test_the_teachers_guide_gives_each_notebook_six_segments_that_fit_a_video():
    tables = guide_tables((ROOT / "notebooks" / "TEACHING.md").read_text(encoding="utf-8"))
    assert sorted(tables) == [p.name[:2] for p in NOTEBOOKS], "one section per notebook"
    for number, rows in tables.items():
        assert [r[0][2:] for r in rows] == list(SEGMENTS), f"{number}: the six segments, in the card's order"
        minutes = sum(int(re.match(r"\d+", r[2]).group()) for r in rows)
        assert 25 <= minutes <= 40, f"{number}: {minutes} minutes"
        assert all(r[3] for r in rows), f"{number}: every segment says what to point at"


def test_the_guide_table_reader_finds_rows():
    text = "## 01 · X\n| segment | a |\n|---|---|\n| 1 introduction and context | t | 2 | p | |\n## 02 · Y\n"
    assert guide_tables(text) == {"01": [["1 introduction and context", "t", "2", "p", ""]], "02": []}
