import pytest

from helpers import problems, rewards

GOOD = "<reasoning>3 + 4 = 7.</reasoning>\n<answer>7</answer>"


def test_problems_are_seeded_distinct_and_correct():
    first = problems.make_problems(30, seed=1)
    assert first == problems.make_problems(30, seed=1)
    assert first != problems.make_problems(30, seed=2)
    assert len({p["question"] for p in first}) == 30
    assert {p["level"] for p in first} == {1, 2, 3}
    for p in first:
        if p["question"].startswith("What is"):
            expression = p["question"][len("What is ") : -1]
            assert eval(expression) == p["answer"], p  # the arithmetic ones check themselves
        assert str(p["answer"]) in p["reasoning"]


def test_heldout_excludes_training_questions():
    train = problems.make_problems(50, seed=1)
    heldout = problems.make_problems(20, seed=2, exclude={p["question"] for p in train})
    assert not {p["question"] for p in train} & {p["question"] for p in heldout}


def test_bad_arguments():
    with pytest.raises(ValueError, match="levels"):
        problems.make_problems(3, seed=0, levels=(4,))
    with pytest.raises(ValueError, match="at least 1"):
        problems.make_problems(0, seed=0)
    with pytest.raises(ValueError, match="distinct"):
        problems.make_problems(500, seed=0, levels=(1,))  # only 81 + 45 level-1 questions exist


def test_prompt_and_rows():
    p = problems.make_problems(1, seed=3)[0]
    row = problems.grpo_rows([p])[0]
    assert row["prompt"][0] == {"role": "system", "content": problems.SYSTEM_PROMPT}
    assert row["prompt"][1]["content"] == p["question"] and row["answer"] == p["answer"]
    warm = problems.warmup_rows([p])[0]
    assert rewards.format_reward([warm["completion"]]) == [1.0]
    assert rewards.correctness_reward([warm["completion"]], answer=[p["answer"]]) == [2.0]


@pytest.mark.parametrize(
    "text, expected",
    [
        (GOOD, 7),
        ("<answer> 1,234 </answer>", 1234),
        ("<answer>42 apples</answer>", 42),
        ("<answer>-5</answer>", -5),
        ("<answer>5 or 6</answer>", None),          # two numbers: ambiguous
        ("<answer>7</answer> <answer>7</answer>", None),  # answer stated twice
        ("<reasoning>7</reasoning><answer></answer>", None),  # tags without an answer
        ("The answer is 7.", None),                 # no tag
        ("", None),
        ("<answer>12,34</answer>", None),           # not a thousands separator: two numbers
    ],
)
def test_extract_answer(text, expected):
    assert rewards.extract_answer(text) == expected


def test_format_reward_is_strict():
    texts = [
        GOOD,
        "  <reasoning>a</reasoning>   <answer>7</answer>\n",
        "<answer>7</answer>",                                      # no reasoning
        GOOD + " Hope this helps!",                                # trailing text
        "<reasoning>a</reasoning><answer>7</answer><answer>7</answer>",  # answer twice
        "<reasoning></reasoning><answer>7</answer>",               # empty reasoning
        "",
    ]
    assert rewards.format_reward(texts) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_correctness_reward_reads_conversational_completions():
    completions = [[{"role": "assistant", "content": text}] for text in (GOOD, "<answer>8</answer>", "")]
    assert rewards.correctness_reward(completions, answer=[7, 7, 7]) == [2.0, 0.0, 0.0]
    assert rewards.correctness_reward(["<answer>1,000 dollars</answer>"], answer=[1000]) == [2.0]


def test_partial_credit_reward_shapes():
    assert rewards.partial_credit_reward([GOOD]) == [1.0]
    assert rewards.partial_credit_reward(["<answer>7</answer>"]) == [0.75]
    assert rewards.partial_credit_reward(["<reasoning>thinking"]) == [0.125]
    assert rewards.partial_credit_reward(["<answer>7</answer><answer>7</answer>"]) == [0.0]
    assert rewards.partial_credit_reward([""]) == [0.0]


def test_completion_text_rejects_unknown_types():
    with pytest.raises(TypeError):
        rewards.completion_text(7)


def fake_generate(answers_by_question):
    """A stand-in for generation.generate that answers from a table: question -> list of answers, used in turn."""
    used = {}

    def generate(model, tokenizer, prompts, max_new_tokens, temperature=0.0, top_p=0.95, batch_size=8, chat=True,
                 seed=None, **generate_kwargs):
        out = []
        for prompt in prompts:
            question = prompt[-1]["content"]
            index = used.get(question, 0)
            used[question] = index + 1
            out.append(answers_by_question[question][index % len(answers_by_question[question])])
        return out

    return generate


def tagged(n):
    return f"<reasoning>work</reasoning>\n<answer>{n}</answer>"


SET = [
    {"question": "What is 1 + 1?", "answer": 2, "level": 1},
    {"question": "What is 12 + 30?", "answer": 42, "level": 2},
    {"question": "What is 2 * 3 + 4?", "answer": 10, "level": 3},
    {"question": "What is 3 * 3 + 1?", "answer": 10, "level": 3},
]


def test_solve_rate_counts_right_answers_format_and_levels(monkeypatch):
    from helpers import generation

    answers = {"What is 1 + 1?": [tagged(2)], "What is 12 + 30?": ["42"], "What is 2 * 3 + 4?": [tagged(10)],
               "What is 3 * 3 + 1?": [tagged(9)]}
    monkeypatch.setattr(generation, "generate", fake_generate(answers))
    result = problems.solve_rate(None, None, SET)
    assert result["accuracy"] == 0.5  # "42" has no answer tag: wrong; 9 is wrong
    assert result["format_rate"] == 0.75
    assert result["by_level"] == {1: 1.0, 2: 0.0, 3: 0.5}
    assert [row["correctness"] for row in result["rows"]] == [2.0, 0.0, 2.0, 0.0]
    assert result["right"] == [True, False, True, False]  # per problem, in order: what paired counts compare


def test_pass_at_k_separates_any_right_mean_and_mixed_groups(monkeypatch):
    from helpers import generation

    answers = {
        "What is 1 + 1?": [tagged(2)] * 4,                              # all right: no gradient
        "What is 12 + 30?": [tagged(41)] * 4,                           # all wrong: no gradient
        "What is 2 * 3 + 4?": [tagged(10), tagged(9), tagged(9), tagged(9)],  # 1 of 4: mixed
        "What is 3 * 3 + 1?": [tagged(10), tagged(10), tagged(10), tagged(1)],  # 3 of 4: mixed
    }
    monkeypatch.setattr(generation, "generate", fake_generate(answers))
    result = problems.pass_at_k(None, None, SET, k=4)
    assert result["k"] == 4 and result["problems"] == 4
    assert result["pass_at_k"] == 0.75
    assert result["mean_success"] == round((4 + 0 + 1 + 3) / 16, 4)
    assert result["mixed"] == 0.5
    assert result["by_level"][3] == {"problems": 2, "pass_at_k": 1.0, "mean_success": 0.5, "mixed": 1.0}
    assert result["by_level"][2]["pass_at_k"] == 0.0


def test_rejection_rows_keep_right_well_formatted_samples_once(monkeypatch):
    from helpers import generation

    answers = {
        "What is 1 + 1?": [tagged(2), tagged(2), "2", tagged(3)],        # one text twice, one untagged, one wrong
        "What is 12 + 30?": [tagged(41)] * 4,                           # none right: nothing to learn from
        "What is 2 * 3 + 4?": [tagged(10), "<answer>10</answer>", tagged(9), tagged(9)],  # right, badly formatted
        "What is 3 * 3 + 1?": [tagged(10), "<reasoning>x</reasoning>\n<answer>10</answer>", tagged(1), tagged(10)],
    }
    calls = []

    def sampled(*args, **kwargs):
        calls.append(kwargs)
        return fake_generate(answers)(*args, **kwargs)

    monkeypatch.setattr(generation, "generate", sampled)
    result = problems.rejection_rows(None, None, SET, k=4, temperature=0.7, seed=5)
    assert (calls[0]["temperature"], calls[0]["top_p"], calls[0]["top_k"]) == (0.7, 1.0, 0)  # sampled as GRPO samples
    assert calls[0]["seed"] == 5
    assert (result["sampled"], result["kept"], result["problems_with_a_kept_answer"]) == (16, 4, 3)
    assert result["kept_share"] == 0.25
    kept = [(r["prompt"][-1]["content"], r["completion"][0]["content"]) for r in result["rows"]]
    assert kept == [("What is 1 + 1?", tagged(2)), ("What is 2 * 3 + 4?", tagged(10)),
                    ("What is 3 * 3 + 1?", tagged(10)),
                    ("What is 3 * 3 + 1?", "<reasoning>x</reasoning>\n<answer>10</answer>")]
    assert result["rows"][0]["prompt"] == problems.to_prompt(SET[0])  # the rows SFTTrainer takes, as warmup_rows


def test_group_advantages_follow_trl_group_scaling():
    import statistics

    group = [4.0, 2.0, 2.0, 1.0]
    mean, std = statistics.mean(group), statistics.stdev(group)  # stdev: Bessel's n - 1, as TRL's nanstd
    assert rewards.group_advantages(group) == pytest.approx([(r - mean) / (std + 1e-4) for r in group])
    assert rewards.group_advantages(group, scale="none") == pytest.approx([1.75, -0.25, -0.25, -1.25])
    assert sum(rewards.group_advantages(group)) == pytest.approx(0.0, abs=1e-12)  # relative to the group: they cancel
    assert rewards.group_advantages([2.0, 2.0, 2.0]) == [0.0, 0.0, 0.0]  # all equal: no signal at all
    with pytest.raises(ValueError, match="at least 2"):
        rewards.group_advantages([1.0])
    with pytest.raises(ValueError, match="scale"):
        rewards.group_advantages([1.0, 2.0], scale="batch")


def test_score_group_sums_the_reward_functions_and_takes_extra_ones():
    group = [GOOD, "<reasoning>3 + 4 = 8.</reasoning>\n<answer>8</answer>", "7"]
    rows = rewards.score_group(group, answer=7)
    assert [r["reward"] for r in rows] == [4.0, 2.0, 0.0]
    assert [r["correctness_reward"] for r in rows] == [2.0, 0.0, 0.0] and rows[2]["completion"] == "7"
    assert rows[0]["advantage"] == 1.0 and rows[1]["advantage"] == 0.0 and rows[2]["advantage"] == -1.0

    def length_penalty(completions, **_):
        return [-0.01 * len(rewards.completion_text(c)) for c in completions]

    same = [GOOD, GOOD + " "]  # equal under the three rewards, different under a length penalty
    assert [r["advantage"] for r in rewards.score_group(same, answer=7)] == [0.0, 0.0]
    with_penalty = rewards.score_group(same, answer=7, reward_functions=[*rewards.REWARD_FUNCTIONS, length_penalty])
    assert with_penalty[0]["advantage"] > 0 > with_penalty[1]["advantage"] and "length_penalty" in with_penalty[0]


def test_solve_rate_is_greedy_and_pass_at_k_samples_k_per_problem_like_grpo(monkeypatch):
    # Catches: solve_rate sampling (its accuracy would change from run to run), pass_at_k decoding greedily (k
    # identical answers: "mixed" would always be 0) or with a top-p cut GRPO does not use, and k samples that are
    # not grouped per problem in order.
    from helpers import generation

    calls = []

    def recording_generate(model, tokenizer, prompts, max_new_tokens, temperature=0.0, top_p=0.95, **kwargs):
        calls.append({"questions": [p[-1]["content"] for p in prompts], "temperature": temperature, "top_p": top_p})
        return [tagged(2)] * len(prompts)

    monkeypatch.setattr(generation, "generate", recording_generate)
    problems.solve_rate(None, None, SET[:2])
    assert calls[-1] == {"questions": ["What is 1 + 1?", "What is 12 + 30?"], "temperature": 0.0, "top_p": 0.95}
    result = problems.pass_at_k(None, None, SET[:2], k=3)
    assert calls[-1]["questions"] == ["What is 1 + 1?"] * 3 + ["What is 12 + 30?"] * 3
    assert calls[-1]["temperature"] == 1.0 and calls[-1]["top_p"] == 1.0
    assert result["pass_at_k"] == 0.5 and result["mean_success"] == 0.5 and result["mixed"] == 0.0


@pytest.mark.parametrize("profile", ["full-cpu", "full-cpu-seed2", "full-cpu-sft234", "smoke-cpu"])
def test_committed_04_references_count_what_their_answers_show(profile):
    import json

    from helpers.results import REFERENCE_DIR
    from tests.results.test_notebook_results import assert_grpo_scores_recomputed

    path = REFERENCE_DIR / "04_grpo_reasoning" / profile / "results.json"
    assert_grpo_scores_recomputed(json.loads(path.read_text(encoding="utf-8")))
