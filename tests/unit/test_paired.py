import pytest

from helpers import paired


def test_mcnemar_p_matches_the_binomial_tail():
    assert paired.mcnemar_p(4, 1) == pytest.approx(2 * 6 / 32)  # 5 flips, at most 1 the other way
    assert paired.mcnemar_p(1, 4) == paired.mcnemar_p(4, 1)
    assert paired.mcnemar_p(10, 0) == pytest.approx(2 / 1024)
    assert paired.mcnemar_p(3, 3) == 1.0 and paired.mcnemar_p(0, 0) == 1.0
    assert paired.mcnemar_p(20, 8) < 0.05 < paired.mcnemar_p(15, 8)


def test_flips_count_each_way_and_refuse_unpaired_lists():
    counts = paired.flips([True, False, False, True, False], [True, True, True, False, False])
    assert counts == {"items": 5, "right_before": 2, "right_after": 3, "wrong_to_right": 2, "right_to_wrong": 1,
                      "p_value": 1.0}
    with pytest.raises(ValueError, match="differ in length"):
        paired.flips([True], [True, False])


def test_describe_calls_a_small_split_noise():
    line = paired.describe(paired.flips([False] * 10, [True] * 3 + [False] * 7), "lines")
    assert line.startswith("3 of 10 lines right after (0 before): 3 wrong -> right, 0 right -> wrong")
    assert line.endswith("(noise)")
    assert "beyond chance" in paired.describe(paired.flips([False] * 10, [True] * 10))


def test_describe_names_two_models_instead_of_before_and_after():
    counts = paired.flips([True, True, True, False], [False, True, True, True])
    line = paired.describe(counts, "questions", first="with full fine-tuning", second="with LoRA")
    assert line.startswith("3 of 4 questions right with LoRA (3 with full fine-tuning): 1 wrong -> right, 1 right")


def test_describe_never_prints_a_p_value_of_zero():
    counts = paired.flips([False] * 60, [True] * 60)  # p = 2 / 2**60: rounds to 0.0 at four decimals
    assert counts["p_value"] == 0.0
    assert paired.describe(counts).endswith("exact McNemar p < 0.0001 (beyond chance)")
    assert "p = 0.375" in paired.describe({**counts, "p_value": 0.375})
