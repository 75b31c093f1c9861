"""Held-out metrics: loss and perplexity on chat examples, bits per character/byte on raw text, fact answers."""

from __future__ import annotations

import math
import re
from typing import Any

from helpers import generation

Messages = list[dict[str, str]]


def chat_example_ids(tokenizer: Any, messages: Messages, max_length: int = 1024) -> tuple[list[int], list[int]]:
    """Token ids of a chat and its labels, with everything before the last assistant answer masked (-100)."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template renders the prompt differently inside the full chat; cannot mask it")
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]
    ids = (prompt_ids + answer_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + answer_ids)[:max_length]
    return ids, labels


def text_ids(tokenizer: Any, text: str, max_length: int = 1024) -> tuple[list[int], list[int]]:
    """Ids of raw text after one document-separator token, with every text token scored."""
    separator = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids = [separator] + tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = ids[:max_length]
    return ids, [-100] + ids[1:]


def summed_nll(model: Any, ids: list[int], labels: list[int]) -> tuple[float, int]:
    """Sum of next-token negative log-likelihoods (nats) over the labelled tokens, and their count."""
    import torch

    input_ids = torch.tensor([ids], device=model.device)
    target = torch.tensor([labels[1:]], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=input_ids).logits[:, :-1, :].float()
    losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="sum")
    return float(losses), int((target != -100).sum())


def _total_nll(model: Any, pairs: list[tuple[list[int], list[int]]]) -> tuple[float, int]:
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for ids, labels in pairs:
            nll, n = summed_nll(model, ids, labels)
            total, count = total + nll, count + n
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("no tokens to score: are the examples empty or all masked?")
    return total, count


def eval_loss(model: Any, tokenizer: Any, examples: list[Messages] | list[str], max_length: int = 1024) -> float:
    """Mean next-token loss per scored token: answers only for chats, every token for raw text."""
    pairs = [
        text_ids(tokenizer, ex, max_length) if isinstance(ex, str) else chat_example_ids(tokenizer, ex, max_length)
        for ex in examples
    ]
    total, count = _total_nll(model, pairs)
    return total / count


def perplexity(loss: float) -> float:
    """exp(loss): the effective number of choices per token."""
    return math.exp(loss)


def _whole_text_ids(tokenizer: Any, texts: list[str], max_length: int) -> list[tuple[list[int], list[int]]]:
    """text_ids of each raw text; ValueError when one fills max_length (it was cut, so its score would be wrong)."""
    pairs = [text_ids(tokenizer, t, max_length) for t in texts]
    if any(len(ids) == max_length for ids, _ in pairs):
        raise ValueError(f"a text is longer than max_length={max_length} tokens; split it or raise max_length")
    return pairs


def bits_per_unit(model: Any, tokenizer: Any, texts: list[str], unit: str = "char", max_length: int = 1024) -> float:
    """Bits per character ('char') or per UTF-8 byte ('byte') of raw text: comparable across tokenizers."""
    if unit not in ("char", "byte"):
        raise ValueError("unit must be 'char' or 'byte'")
    pairs = _whole_text_ids(tokenizer, texts, max_length)
    total, _ = _total_nll(model, pairs)
    size = sum(len(t) if unit == "char" else len(t.encode("utf-8")) for t in texts)
    return total / math.log(2) / size


def fertility(tokenizer: Any, texts: list[str]) -> dict[str, float]:
    """Tokens per word and characters per token of a tokenizer on some texts."""
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    words = sum(len(t.split()) for t in texts)
    chars = sum(len(t) for t in texts)
    return {
        "tokens_per_word": round(tokens / words, 3),
        "chars_per_token": round(chars / tokens, 3),
        "tokens": tokens,
        "words": words,
    }


def completion_logprob(
    model: Any, tokenizer: Any, prompt: Messages, completion: Messages, max_length: int = 1024
) -> float:
    """log p(completion | prompt) summed over the completion's tokens (nats)."""
    ids, labels = chat_example_ids(tokenizer, prompt + completion, max_length)
    nll, _ = _total_nll(model, [(ids, labels)])
    return -nll


def preference_metrics(
    model: Any, tokenizer: Any, pairs: list[dict[str, Any]], beta: float, max_length: int = 1024
) -> dict[str, Any]:
    """DPO's view of held-out pairs, for a PEFT model whose adapter-off state is the reference.

    reward(y) = beta * (log pi(y|x) - log pi_ref(y|x)). Returns the share of pairs where
    reward(chosen) > reward(rejected) (ties count half: before training policy == reference, so every pair ties at 0.5),
    the mean reward margin, and the share of pairs where the policy alone gives chosen a higher log-probability than
    rejected. "by_kind" has accuracy and margin for each `kind` of pair (pairs without one: "unlabelled"), the number of
    pairs, and the accuracy of a rule that knows nothing but length: prefer the shorter answer. "per_pair" lists each
    pair's kind and the implicit rewards of its chosen and rejected answers (for plots.plot_pair_rewards).
    """
    per_pair = pair_rewards(model, tokenizer, pairs, beta, max_length)
    margins = [c - r for (c, r), _ in per_pair]
    groups: dict[str, list[int]] = {}
    for index, pair in enumerate(pairs):
        groups.setdefault(pair.get("kind", "unlabelled"), []).append(index)
    by_kind = {
        kind: {
            "pairs": len(indexes),
            "reward_accuracy": _win_rate([margins[i] for i in indexes]),
            "reward_margin": sum(margins[i] for i in indexes) / len(indexes),
            "shorter_answer_accuracy": shorter_answer_accuracy([pairs[i] for i in indexes]),
        }
        for kind, indexes in sorted(groups.items())
    }
    return {
        "reward_accuracy": _win_rate(margins),
        "reward_margin": sum(margins) / len(pairs),
        "logprob_accuracy": sum(win for _, win in per_pair) / len(pairs),
        "by_kind": by_kind,
        "per_pair": [{"kind": pair.get("kind", "unlabelled"), "chosen": c, "rejected": r}
                     for pair, ((c, r), _) in zip(pairs, per_pair)],
    }


def preference_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Two preference_metrics results (before and after training) as (before, after) pairs under the names
    results.json uses: heldout_reward_accuracy, heldout_reward_margin, heldout_logprob_accuracy and heldout_by_kind
    (per kind: pairs, the prefer-the-shorter rule's accuracy, reward accuracy and margin). For results.record."""
    found: dict[str, Any] = {
        f"heldout_{name}": (before[name], after[name])
        for name in ("reward_accuracy", "reward_margin", "logprob_accuracy")
    }
    found["heldout_by_kind"] = {
        kind: {"pairs": now["pairs"], "shorter_answer_accuracy": now["shorter_answer_accuracy"],
               **{name: (before["by_kind"][kind][name], now[name]) for name in ("reward_accuracy", "reward_margin")}}
        for kind, now in after["by_kind"].items()
    }
    return found


def _win_rate(margins: list[float]) -> float:
    """Share of positive margins; ties (|margin| <= 1e-9) count half."""
    return sum(1.0 if m > 1e-9 else 0.5 if abs(m) <= 1e-9 else 0.0 for m in margins) / len(margins)


def pair_rewards(
    model: Any, tokenizer: Any, pairs: list[dict[str, Messages]], beta: float, max_length: int = 1024
) -> list[tuple[tuple[float, float], float]]:
    """Per pair: ((reward chosen, reward rejected), 1/0.5/0 when the policy's log-prob prefers chosen/ties/rejected)."""
    found = []
    for pair in pairs:
        policy = [
            completion_logprob(model, tokenizer, pair["prompt"], pair[k], max_length) for k in ("chosen", "rejected")
        ]
        with model.disable_adapter():
            reference = [
                completion_logprob(model, tokenizer, pair["prompt"], pair[k], max_length)
                for k in ("chosen", "rejected")
            ]
        chosen, rejected = (beta * (p - r) for p, r in zip(policy, reference))
        found.append(((chosen, rejected), 1.0 if policy[0] > policy[1] else 0.5 if policy[0] == policy[1] else 0.0))
    return found


def shorter_answer_accuracy(pairs: list[dict[str, Any]]) -> float:
    """How often "prefer the shorter answer" (in characters) picks the chosen one; ties count half. A baseline that
    needs no model: held-out accuracy worth reporting should beat it where length does not give the answer away."""
    def length(messages: Messages) -> int:
        return sum(len(m["content"]) for m in messages)

    margins = [length(p["rejected"]) - length(p["chosen"]) for p in pairs]
    return _win_rate([float(m) for m in margins])


def text_bits(model: Any, tokenizer: Any, texts: list[str], max_length: int = 1024) -> list[dict[str, float]]:
    """Per raw text: its negative log-likelihood in bits ("bits"), the tokens scored ("tokens") and its size in UTF-8
    bytes ("bytes") and characters ("chars"). sum(bits) / sum(bytes) over all texts is bits_per_unit(..., "byte")."""
    pairs = _whole_text_ids(tokenizer, texts, max_length)
    was_training = model.training
    model.eval()
    found = []
    try:
        for (ids, labels), text in zip(pairs, texts):
            nll, count = summed_nll(model, ids, labels)
            found.append(
                {"bits": nll / math.log(2), "tokens": count, "bytes": len(text.encode("utf-8")), "chars": len(text)}
            )
    finally:
        model.train(was_training)
    return found


FIRST_SENTENCE = re.compile(r"^.*?(?:[.!?](?=\s|$)|\n|$)", re.DOTALL)


def answer_is_right(answer: str, accepted: list[str]) -> bool:
    """True when the first sentence of `answer` contains one of the `accepted` answers as whole words, ignoring case
    ("The capital is Paris." for "Paris"; not "Parisian", and not "It is Kepler-41B. It is like Earth." for "Earth").
    A first sentence that names a wrong answer beside the right one still passes: the check is that loose."""
    first = FIRST_SENTENCE.match(answer.strip()).group(0)
    return any(re.search(rf"(?<!\w){re.escape(a)}(?!\w)", first, re.IGNORECASE) for a in accepted)


def fact_check(
    model: Any, tokenizer: Any, facts: list[dict[str, Any]], max_new_tokens: int = 48
) -> list[dict[str, Any]]:
    """Ask each fact question (greedy, chat template) and judge the answer with answer_is_right: one row per question
    with its `answer` and `right`."""
    answers = generation.generate(model, tokenizer, [f["question"] for f in facts], max_new_tokens)
    return [{"question": f["question"], "answer": a, "right": answer_is_right(a, f["answers"])}
            for f, a in zip(facts, answers)]
