"""Reward functions for GRPO (notebook 04), in TRL's signature: f(completions, **columns) -> list[float]."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

FORMAT_RE = re.compile(r"^\s*<reasoning>(.+?)</reasoning>\s*<answer>(.+?)</answer>\s*$", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
INTEGER_RE = re.compile(r"-?\d{1,3}(?:,\d{3})+(?!\d)|-?\d+")
TAGS = ("<reasoning>", "</reasoning>", "<answer>", "</answer>")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or the content of a conversational completion's last message."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}")


def extract_answer(text: str) -> int | None:
    """The integer inside the single <answer> tag: thousands commas and trailing words allowed ("1,200 apples"),
    but None when there is no tag, several tags, no integer, or more than one integer ("5 or 6")."""
    found = ANSWER_RE.findall(text)
    if len(found) != 1:
        return None
    numbers = INTEGER_RE.findall(found[0])
    if len(numbers) != 1:
        return None
    return int(numbers[0].replace(",", ""))


def format_reward(completions: list[Any], **_: Any) -> list[float]:
    """1.0 for exactly '<reasoning>...</reasoning> <answer>...</answer>' (each tag once, nothing after), else 0.0."""
    rewards = []
    for c in completions:
        text = completion_text(c)
        ok = FORMAT_RE.match(text) is not None and all(text.count(tag) == 1 for tag in TAGS)
        rewards.append(1.0 if ok else 0.0)
    return rewards


def correctness_reward(completions: list[Any], answer: list[int], **_: Any) -> list[float]:
    """2.0 when the extracted answer equals the reference integer, else 0.0 (the reward we actually care about)."""
    return [2.0 if extract_answer(completion_text(c)) == int(a) else 0.0 for c, a in zip(completions, answer)]


def partial_credit_reward(completions: list[Any], **_: Any) -> list[float]:
    """Up to 1.0 of shaping: 0.125 for each of the four tags used exactly once, and 0.5 when the answer tag holds one
    integer."""
    rewards = []
    for c in completions:
        text = completion_text(c)
        score = sum(0.125 for tag in TAGS if text.count(tag) == 1)
        if extract_answer(text) is not None:
            score += 0.5
        rewards.append(score)
    return rewards


REWARD_FUNCTIONS = [format_reward, correctness_reward, partial_credit_reward]


def group_advantages(rewards: list[float], scale: str = "group") -> list[float]:
    """GRPO's advantages for one group (the completions of one prompt), as TRL 1.15 computes them.

    scale="group" (TRL's default `scale_rewards`): (reward - group mean) / (group std + 1e-4), the std with Bessel's
    correction (divided by n - 1); scale="none" (Dr. GRPO): reward - group mean. All-equal rewards give all zeros.
    """
    if len(rewards) < 2:
        raise ValueError("a group needs at least 2 completions")
    if scale not in ("group", "none"):
        raise ValueError(f"scale must be 'group' or 'none', got {scale!r}")
    mean = sum(rewards) / len(rewards)
    centred = [r - mean for r in rewards]
    if scale == "none":
        return centred
    std = (sum(c * c for c in centred) / (len(rewards) - 1)) ** 0.5
    return [c / (std + 1e-4) for c in centred]


def score_group(
    completions: list[Any],
    answer: int,
    reward_functions: list[Callable[..., list[float]]] | None = None,
    scale: str = "group",
) -> list[dict[str, Any]]:
    """One row per completion of one prompt, scored as GRPOTrainer scores it: each reward function's value (by function
    name), their sum `reward` (TRL's default weights are all 1.0; rounded to 4 digits) and the group-relative
    `advantage` (rounded to 3 digits). `reward_functions` defaults to REWARD_FUNCTIONS; add your own to see what it
    would change."""
    functions = REWARD_FUNCTIONS if reward_functions is None else reward_functions
    columns = {f.__name__: f(completions, answer=[answer] * len(completions)) for f in functions}
    totals = [sum(column[i] for column in columns.values()) for i in range(len(completions))]
    advantages = group_advantages(totals, scale)
    return [
        {"completion": completion_text(c), **{name: column[i] for name, column in columns.items()},
         "reward": round(totals[i], 4), "advantage": round(advantages[i], 3)}
        for i, c in enumerate(completions)
    ]
