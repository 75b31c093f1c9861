"""Reward functions for GRPO (notebook 04), in TRL's signature: f(completions, **columns) -> list[float]."""

from __future__ import annotations

import re
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
    """Up to 1.0 of shaping: 0.125 for each of the four tags used exactly once, and 0.5 when the answer tag holds one integer."""
    rewards = []
    for c in completions:
        text = completion_text(c)
        score = sum(0.125 for tag in TAGS if text.count(tag) == 1)
        if extract_answer(text) is not None:
            score += 0.5
        rewards.append(score)
    return rewards


REWARD_FUNCTIONS = [format_reward, correctness_reward, partial_credit_reward]
