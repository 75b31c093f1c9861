"""Shared helpers for the smol-trainer-notebooks series (one module per concern).

`ROOT` is the folder that holds `helpers/` and `data/`: the repository, or the folder a notebook's bundle was
unpacked into (see tools/sync_notebooks.py).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"

# `from helpers import *`: the two paths, then every helpers module (tests/unit/test_imports.py checks it).
__all__ = [
    "ROOT",
    "DATA_DIR",
    "colab",
    "corpora",
    "data",
    "display",
    "engine",
    "evaluation",
    "generation",
    "models",
    "paired",
    "plain",
    "plots",
    "problems",
    "results",
    "rewards",
    "runtime",
    "switches",
    "t4",
    "torch_lm_head",
    "vocab",
    "widgets",
]
