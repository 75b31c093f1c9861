"""Every keyword argument the notebooks pass to TRL / Unsloth must exist in the pinned versions, and in the plain
engine's stand-ins (helpers.engine) for Unsloth's calls."""

import ast
import inspect
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def callables():
    # isort: off
    import unsloth  # noqa: F401  (first: it patches trl)
    import trl
    from unsloth import FastLanguageModel, UnslothTrainer, UnslothTrainingArguments
    # isort: on

    found = {
        "FastLanguageModel.from_pretrained": FastLanguageModel.from_pretrained,
        "FastLanguageModel.get_peft_model": FastLanguageModel.get_peft_model,
        "CPTTrainer": UnslothTrainer,  # notebook 05 imports them under these names
        "CPTConfig": UnslothTrainingArguments,
    }
    for name in ("SFTConfig", "SFTTrainer", "DPOConfig", "DPOTrainer", "GRPOConfig", "GRPOTrainer"):
        found[name] = getattr(trl, name)
    return found


def accepted(target) -> set[str]:
    """Named parameters of a function, or of a class's __init__ along its MRO (for *args/**kwargs wrappers)."""
    if inspect.isclass(target):
        chain = [c.__init__ for c in inspect.getmro(target) if "__init__" in vars(c)]
    else:
        chain = [target]
    names: set[str] = set()
    for fn in chain:
        params = inspect.signature(fn).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return names


def notebook_calls(path: Path, names: set[str]):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("!", "%"))))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in names:
                yield ast.unparse(node.func), [k.arg for k in node.keywords if k.arg]


def check_keywords(path: Path, targets: dict) -> tuple[list[str], int]:
    """(each call of `targets` in the notebook with the keywords its target does not take, keywords checked)."""
    problems, checked = [], 0
    for func, keywords in notebook_calls(path, set(targets)):
        unknown = set(keywords) - accepted(targets[func])
        if unknown:
            problems.append(f"{func}() got {sorted(unknown)}")
        checked += len(keywords)
    return problems, checked


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_keywords_exist(path):
    problems, checked = check_keywords(path, callables())
    assert not problems, f"{path.name}: {problems}, which the pinned versions do not accept"
    assert checked > 0, f"{path.name}: no TRL/Unsloth call found to check"


def plain_callables():
    """What the notebooks' Unsloth names are on the plain engine (their `else:` branches)."""
    from helpers import plain

    return {
        "FastLanguageModel.from_pretrained": plain.PlainLanguageModel.from_pretrained,
        "FastLanguageModel.get_peft_model": plain.PlainLanguageModel.get_peft_model,
        "CPTTrainer": plain.CPTTrainer,
        "CPTConfig": plain.CPTConfig,
    }


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_plain_engine_takes_every_keyword_the_notebooks_pass(path):
    problems, checked = check_keywords(path, plain_callables())
    assert not problems, f"{path.name}: the plain engine does not take {problems}"
    assert checked >= 4, f"{path.name}: no FastLanguageModel call found to check"


def test_drift_check_catches_a_wrong_keyword():
    import trl

    assert "max_length" in accepted(trl.SFTConfig)
    assert "max_seq_len" not in accepted(trl.SFTConfig)
