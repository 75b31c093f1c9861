"""Shared helpers for the smol-trainer-notebooks series (one module per concern)."""

__all__ = ["runtime", "models", "data", "generation", "evaluation", "plots", "widgets", "results"]
