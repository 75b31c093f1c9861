"""Shared fixtures: the offline SmolLM2 (loaded once per test session), its tokenizer, and when the session started."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

SESSION_STARTED = pytest.StashKey[float]()
# A notebook for a Colab account (it runs the six notebooks), not a test: `pytest tests` must not run it under nbval.
collect_ignore = ["colab_t4.ipynb"]
_IMPORTED = time.time()  # fallback for a run where this conftest is loaded only after the session started


REFUSAL = (
    "pytest with no path from the repository root: that is not the test suite. Run ./setup_venv.sh test (ruff, the "
    "unit tests, each notebook copied alone into a folder under nbval with SMOKE_TEST=1, then tests/results on what "
    "they wrote), or name what to run: pytest tests/unit (or a file of it)."
)


def pytest_configure(config) -> None:
    """Refuse a bare `pytest` (or `pytest .`) from the repository root: it would run the notebooks in place, in the full
    profile unless SMOKE_TEST=1 (hours), not each copied alone as Colab runs them, and the results checks without
    SMOL_TESTS_STARTED. The suite's own sessions (tools/run_tests.py) and setup_venv.sh test-recipes name their
    paths."""
    whole = config.args_source == pytest.Config.ArgsSource.TESTPATHS or any(
        not arg.startswith("-") and Path(config.invocation_params.dir, arg.split("::")[0]).resolve() == config.rootpath
        for arg in config.args
    )
    if whole:
        raise pytest.UsageError(REFUSAL)


def pytest_sessionstart(session) -> None:
    """Note the wall-clock time the session starts: tests/results refuses results.json files written before it.
    SMOL_TESTS_STARTED (seconds since the epoch) says the test run started earlier: ./setup_venv.sh test sets it when
    the notebooks run in pytest sessions of their own before the one that checks their results."""
    started = os.environ.get("SMOL_TESTS_STARTED", "").strip()
    session.config.stash[SESSION_STARTED] = float(started) if started else time.time()


@pytest.fixture(scope="session")
def session_started(request) -> float:
    """time.time() when this test session started (files written by notebooks run in it are newer)."""
    return request.config.stash.get(SESSION_STARTED, _IMPORTED)


def load_offline() -> tuple:
    """(model, tokenizer) of the offline copy through FastLanguageModel.from_pretrained (the plain engine's stand-in
    where this process runs on it), float32, with the hub's special tokens: the call the notebooks make visibly."""
    # isort: off
    import unsloth  # noqa: F401  (first: it patches torch and transformers)
    import torch

    # isort: on

    from helpers import engine, models, plain

    if engine.name() == "unsloth":
        from unsloth import FastLanguageModel
    else:
        FastLanguageModel = plain.PlainLanguageModel
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=models.model_name("offline"), max_seq_length=256, dtype=torch.float32, load_in_4bit=False
    )
    models.set_hub_special_tokens(tokenizer)
    return model, tokenizer


@pytest.fixture(scope="session")
def offline_loader():
    """load_offline itself, for a test that needs a model of its own."""
    return load_offline


@pytest.fixture(scope="session")
def smol():
    """(model, tokenizer) of the offline SmolLM2-135M-Instruct through Unsloth, float32 on CPU."""
    return load_offline()


@pytest.fixture(scope="session")
def tokenizer(smol):
    return smol[1]


def pytest_terminal_summary(terminalreporter) -> None:
    """Wall time per test file (each notebook under nbval is one file), slowest first: where the CI minutes go."""
    totals: dict[str, float] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            if hasattr(report, "duration") and hasattr(report, "nodeid"):
                path = report.nodeid.split("::")[0]
                totals[path] = totals.get(path, 0.0) + report.duration
    if totals:
        terminalreporter.write_sep("=", "seconds per test file")
        for path, seconds in sorted(totals.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:8.1f}  {path}")
