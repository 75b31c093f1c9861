"""Shared fixtures: the offline SmolLM2 (loaded once per test session) and its tokenizer."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smol():
    """(model, tokenizer) of the offline SmolLM2-135M-Instruct through Unsloth, float32 on CPU."""
    import unsloth  # noqa: F401
    import torch

    from helpers import models

    return models.load_model("offline", max_seq_length=256, dtype=torch.float32)


@pytest.fixture(scope="session")
def tokenizer(smol):
    return smol[1]
