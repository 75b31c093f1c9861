"""tools/colab_sim.py, the parts that run without building its venv."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools import colab_sim

ROOT = Path(__file__).resolve().parents[2]


def test_first_cells_go_to_python_on_stdin_not_as_one_long_argument(monkeypatch):
    # Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN); the bundle cell alone has passed that size,
    # and `python -c <cells>` then failed with "Argument list too long".
    notebook = ROOT / "notebooks" / "02_lora_finetuning.ipynb"
    sources = colab_sim.cell_sources(notebook)
    calls = []

    def fake_run(args, **kwargs):
        calls.append((args, kwargs))
        return subprocess.CompletedProcess(args, 1, stdout="", stderr="")

    monkeypatch.setattr(colab_sim, "installed", lambda python: {})
    monkeypatch.setattr(colab_sim.subprocess, "run", fake_run)
    with pytest.raises(SystemExit, match="first cells of 02_lora_finetuning.ipynb failed"):
        colab_sim.run_notebook(Path("/sim/bin/python"), notebook)
    args, kwargs = calls[0]
    assert args == ["/sim/bin/python", "-"]
    assert kwargs["input"] == sources["bundle"] + "\n" + sources["install"]
    assert max(len(a) for a in args) < 1000
    assert len(sources["bundle"]) > 10_000  # the case this guards: a bundle far longer than a command line's words
