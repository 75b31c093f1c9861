"""Paired before/after comparisons on the same items: which flipped each way, and whether that beats chance."""

from __future__ import annotations

from math import comb
from typing import Any


def mcnemar_p(gained: int, lost: int) -> float:
    """Exact two-sided McNemar p-value: the chance of a split at least this uneven between `gained` (wrong -> right)
    and `lost` (right -> wrong) items if each flip were a fair coin. Items that did not flip carry no information."""
    flips = gained + lost
    if flips == 0:
        return 1.0
    tail = sum(comb(flips, k) for k in range(min(gained, lost) + 1)) / 2**flips
    return min(1.0, 2 * tail)


def flips(before: list[bool], after: list[bool]) -> dict[str, Any]:
    """Paired counts over the same items, each right (True) or wrong before and after: how many were right, how many
    flipped each way, and the exact McNemar p-value of the flips."""
    if len(before) != len(after):
        raise ValueError(f"paired lists differ in length: {len(before)} before, {len(after)} after")
    gained = sum(not b and a for b, a in zip(before, after))
    lost = sum(b and not a for b, a in zip(before, after))
    return {"items": len(before), "right_before": sum(before), "right_after": sum(after),
            "wrong_to_right": gained, "right_to_wrong": lost, "p_value": round(mcnemar_p(gained, lost), 4)}


def describe(counts: dict[str, Any], noun: str = "items", first: str = "before", second: str = "after") -> str:
    """One line for a notebook: '7 of 121 lines right after (4 before): 4 wrong -> right, 1 right -> wrong, exact
    McNemar p = 0.375 (noise)', with p >= 0.05 called noise. `first` and `second` name the two sides when they are not
    before and after (two models on the same questions)."""
    verdict = "beyond chance" if counts["p_value"] < 0.05 else "noise"
    p = "p < 0.0001" if counts["p_value"] < 1e-4 else f"p = {counts['p_value']:.3g}"  # flips() keeps 4 decimals
    return (f"{counts['right_after']} of {counts['items']} {noun} right {second} ({counts['right_before']} {first}): "
            f"{counts['wrong_to_right']} wrong -> right, {counts['right_to_wrong']} right -> wrong, "
            f"exact McNemar {p} ({verdict})")
