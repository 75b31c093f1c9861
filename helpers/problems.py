"""Seeded arithmetic and word problems with integer answers, in the prompt format GRPO trains on (notebook 04)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from helpers import generation, rewards

SYSTEM_PROMPT = (
    "Solve the problem. First think step by step inside <reasoning> </reasoning>, "
    "then give only the final integer inside <answer> </answer>."
)
LEVELS = (1, 2, 3)
NAMES = ("Asha", "Ben", "Carlos", "Dina", "Emre", "Fatima", "Gopal", "Hana", "Ivan", "Jia")
ITEMS = ("apples", "pencils", "marbles", "stickers", "books", "coins", "cookies", "shells")


def _level1(rng: random.Random) -> tuple[str, int, str]:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    if rng.random() < 0.5:
        return f"What is {a} + {b}?", a + b, f"{a} + {b} = {a + b}."
    a, b = max(a, b), min(a, b)
    return f"What is {a} - {b}?", a - b, f"{a} - {b} = {a - b}."


def _level2(rng: random.Random) -> tuple[str, int, str]:
    kind = rng.choice(("add", "sub", "mul", "word"))
    if kind == "add":
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        return f"What is {a} + {b}?", a + b, f"{a} + {b} = {a + b}."
    if kind == "sub":
        a, b = sorted((rng.randint(10, 99), rng.randint(10, 99)), reverse=True)
        return f"What is {a} - {b}?", a - b, f"{a} - {b} = {a - b}."
    if kind == "mul":
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        return f"What is {a} * {b}?", a * b, f"{a} * {b} = {a * b}."
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b = rng.randint(3, 20), rng.randint(2, 15)
    return (
        f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?",
        a + b,
        f"{name} starts with {a} {item} and gets {b} more: {a} + {b} = {a + b}.",
    )


def _level3(rng: random.Random) -> tuple[str, int, str]:
    kind = rng.choice(("two_step", "groups", "spend"))
    if kind == "two_step":
        a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(1, 30)
        return f"What is {a} * {b} + {c}?", a * b + c, f"First {a} * {b} = {a * b}. Then {a * b} + {c} = {a * b + c}."
    if kind == "groups":
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        boxes, per_box, given = rng.randint(2, 6), rng.randint(3, 12), rng.randint(2, 5)
        return (
            f"{name} has {boxes} boxes with {per_box} {item} in each box and gives away {given} {item}. "
            f"How many {item} are left?",
            boxes * per_box - given,
            f"{boxes} boxes * {per_box} = {boxes * per_box} {item}. "
            f"{boxes * per_box} - {given} = {boxes * per_box - given}.",
        )
    name = rng.choice(NAMES)
    money, price, count = rng.randint(20, 100), rng.randint(2, 6), rng.randint(1, 3)
    return (
        f"{name} has {money} dollars and buys {count} books that cost {price} dollars each. "
        "How many dollars are left?",
        money - price * count,
        f"{count} books * {price} dollars = {price * count} dollars. "
        f"{money} - {price * count} = {money - price * count}.",
    )


MAKERS: dict[int, Callable[[random.Random], tuple[str, int, str]]] = {1: _level1, 2: _level2, 3: _level3}


def make_problems(n: int, seed: int, levels: tuple[int, ...] = LEVELS, exclude: set[str] | None = None) -> list[dict]:
    """n distinct problems {question, answer, level, reasoning}, reproducible from `seed`; questions in `exclude` are
    skipped."""
    if n < 1:
        raise ValueError("n must be at least 1")
    unknown = set(levels) - set(MAKERS)
    if unknown or not levels:
        raise ValueError(f"levels must be taken from {LEVELS}, got {levels}")
    rng = random.Random(seed)
    seen = set(exclude or ())
    problems = []
    for attempt in range(200 * n):
        level = levels[attempt % len(levels)]  # round robin; an exhausted level just stops adding
        question, answer, reasoning = MAKERS[level](rng)
        if question in seen:
            continue
        seen.add(question)
        problems.append({"question": question, "answer": answer, "level": level, "reasoning": reasoning})
        if len(problems) == n:
            return problems
    raise ValueError(f"could only make {len(problems)} distinct problems for levels {levels}; ask for fewer")


def to_prompt(problem: dict) -> list[dict[str, str]]:
    """The chat prompt the model sees: the format instructions as system message, the question as user message."""
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": problem["question"]}]


def grpo_rows(problems: list[dict]) -> list[dict]:
    """Rows for TRL's GRPOTrainer: a conversational `prompt`, plus `answer` (passed on to the reward functions)."""
    return [{"prompt": to_prompt(p), "answer": p["answer"], "level": p["level"]} for p in problems]


def worked_solution(problem: dict) -> str:
    """A completion in exactly the format the rewards check: used for the short format warm-up before GRPO."""
    return f"<reasoning>{problem['reasoning']}</reasoning>\n<answer>{problem['answer']}</answer>"


def warmup_rows(problems: list[dict]) -> list[dict]:
    """Prompt-completion rows (for SFTTrainer) that show the answer format on worked solutions."""
    return [
        {"prompt": to_prompt(p), "completion": [{"role": "assistant", "content": worked_solution(p)}]}
        for p in problems
    ]


def solve_rate(
    model: Any, tokenizer: Any, problems: list[dict], max_new_tokens: int = 128, batch_size: int = 32
) -> dict[str, Any]:
    """Greedy answers to `problems`: accuracy, format-compliance rate, accuracy per level, whether each problem was
    answered right (`right`, in order: for paired counts with helpers.paired) and one row per problem."""
    completions = generation.generate(
        model, tokenizer, [to_prompt(p) for p in problems], max_new_tokens, batch_size=batch_size
    )
    correct = rewards.correctness_reward(completions, answer=[p["answer"] for p in problems])
    formatted = rewards.format_reward(completions)
    partial = rewards.partial_credit_reward(completions)
    rows = [
        {"question": p["question"], "answer": p["answer"], "completion": c, "format": f, "correctness": k, "partial": s}
        for p, c, f, k, s in zip(problems, completions, formatted, correct, partial)
    ]
    by_level = {}
    for level in sorted({p["level"] for p in problems}):
        hits = [k > 0 for p, k in zip(problems, correct) if p["level"] == level]
        by_level[level] = round(sum(hits) / len(hits), 4)
    return {
        "accuracy": sum(k > 0 for k in correct) / len(problems),
        "format_rate": sum(formatted) / len(problems),
        "by_level": by_level,
        "right": [k > 0 for k in correct],
        "rows": rows,
    }


def pass_at_k(
    model: Any,
    tokenizer: Any,
    problems: list[dict],
    k: int,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    batch_size: int = 32,
) -> dict[str, Any]:
    """Sample `k` answers per problem, as GRPO does (temperature, no top-p cut), and count how many are right.

    pass_at_k: share of problems with at least one right answer (what GRPO can reinforce);
    mean_success: share of all samples that are right;
    mixed: share of problems whose k samples are neither all right nor all wrong. Only those give GRPO a gradient
    from the correctness reward: a group where every sample scores the same has zero advantage.
    """
    prompts = [to_prompt(p) for p in problems for _ in range(k)]
    completions = generation.generate(
        model, tokenizer, prompts, max_new_tokens, temperature=temperature, top_p=1.0, batch_size=batch_size
    )
    correct = rewards.correctness_reward(completions, answer=[p["answer"] for p in problems for _ in range(k)])
    rights = [sum(c > 0 for c in correct[i * k : (i + 1) * k]) for i in range(len(problems))]

    def summary(counts: list[int]) -> dict[str, float]:
        return {
            "problems": len(counts),
            "pass_at_k": round(sum(r > 0 for r in counts) / len(counts), 4),
            "mean_success": round(sum(counts) / (k * len(counts)), 4),
            "mixed": round(sum(0 < r < k for r in counts) / len(counts), 4),
        }

    levels = sorted({p["level"] for p in problems})
    return {
        "k": k,
        **summary(rights),
        "by_level": {lv: summary([r for p, r in zip(problems, rights) if p["level"] == lv]) for lv in levels},
    }


def rejection_rows(
    model: Any,
    tokenizer: Any,
    problems: list[dict],
    k: int,
    max_new_tokens: int = 128,
    temperature: float = 1.0,
    batch_size: int = 32,
    seed: int | None = None,
) -> dict[str, Any]:
    """Rejection sampling, the checker-only baseline to GRPO (also called RFT, expert iteration or STaR): sample `k`
    completions per problem as GRPO does (no top-p or top-k cut), keep those the reward functions score right and well
    formatted (each distinct text once per problem), and return them as prompt-completion rows for SFTTrainer (the
    shape of warmup_rows), with the counts."""
    prompts = [to_prompt(p) for p in problems for _ in range(k)]
    completions = generation.generate(
        model, tokenizer, prompts, max_new_tokens, temperature=temperature, top_p=1.0, top_k=0,
        batch_size=batch_size, seed=seed,
    )
    answers = [p["answer"] for p in problems for _ in range(k)]
    right = rewards.correctness_reward(completions, answer=answers)
    formatted = rewards.format_reward(completions)
    rows, seen = [], set()
    for i, (completion, r, f) in enumerate(zip(completions, right, formatted)):
        problem = problems[i // k]
        if r > 0 and f > 0 and (problem["question"], completion) not in seen:
            seen.add((problem["question"], completion))
            rows.append({"prompt": to_prompt(problem), "completion": [{"role": "assistant", "content": completion}]})
    return {
        "rows": rows,
        "sampled": len(completions),
        "kept": len(rows),
        "kept_share": round(len(rows) / len(completions), 4),
        "problems_with_a_kept_answer": len({q for q, _ in seen}),
    }

