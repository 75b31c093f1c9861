import math

import pytest

from helpers import evaluation

CHAT = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "2 + 2 = 4."}]


def test_chat_labels_mask_the_prompt(tokenizer):
    ids, labels = evaluation.chat_example_ids(tokenizer, CHAT)
    assert len(ids) == len(labels)
    scored = tokenizer.decode([i for i, l in zip(ids, labels) if l != -100])
    assert scored.startswith("2 + 2 = 4.<|im_end|>")
    assert all(l == -100 for l in labels[: ids.index(tokenizer.convert_tokens_to_ids("<|im_start|>"), 5)])


def test_text_ids_score_every_token(tokenizer):
    ids, labels = evaluation.text_ids(tokenizer, "hello world")
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|endoftext|>") and labels[0] == -100
    assert labels[1:] == ids[1:]


def test_eval_loss_prefers_the_right_answer(smol):
    model, tokenizer = smol
    right = evaluation.eval_loss(model, tokenizer, [CHAT])
    wrong = evaluation.eval_loss(model, tokenizer, [[CHAT[0], {"role": "assistant", "content": "Purple elephant seventeen."}]])
    assert 0 < right < wrong
    assert evaluation.perplexity(right) == pytest.approx(math.exp(right))


def test_bits_per_char_and_byte(smol):
    model, tokenizer = smol
    english = ["The cat sat on the mat and looked out of the window."]
    bpc = evaluation.bits_per_unit(model, tokenizer, english, "char")
    bpb = evaluation.bits_per_unit(model, tokenizer, english, "byte")
    assert 0 < bpc < 4 and bpb == pytest.approx(bpc)  # ASCII: one byte per character
    shuffled = evaluation.bits_per_unit(model, tokenizer, ["cat window mat The of sat the out looked on and."], "char")
    assert shuffled > bpc
    with pytest.raises(ValueError, match="unit"):
        evaluation.bits_per_unit(model, tokenizer, english, "word")
    with pytest.raises(ValueError, match="longer than max_length"):
        evaluation.bits_per_unit(model, tokenizer, english * 20, "char", max_length=8)


def test_fertility(tokenizer):
    stats = evaluation.fertility(tokenizer, ["The capital of France is"])
    assert stats == {"tokens_per_word": 1.0, "chars_per_token": 4.8, "tokens": 5, "words": 5}


def test_preference_metrics_by_kind_and_the_length_baseline(monkeypatch):
    def pair(kind, chosen, rejected):
        return {"kind": kind, "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "assistant", "content": chosen}], "rejected": [{"role": "assistant", "content": rejected}]}

    pairs = [pair("a", "short", "much longer answer"), pair("a", "a long chosen answer", "brief"), pair("b", "same", "same!")]
    # rewards (chosen, rejected) and log-prob wins, as pair_rewards would give them
    monkeypatch.setattr(evaluation, "pair_rewards", lambda *args: [((0.3, 0.1), 1.0), ((0.0, 0.2), 0.0), ((0.1, 0.1), 0.5)])
    found = evaluation.preference_metrics(None, None, pairs, beta=0.1)
    assert found["reward_accuracy"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert found["reward_margin"] == pytest.approx((0.2 - 0.2 + 0.0) / 3)
    assert found["logprob_accuracy"] == pytest.approx(0.5)
    assert found["by_kind"]["a"] == {"pairs": 2, "reward_accuracy": 0.5, "reward_margin": pytest.approx(0.0),
                                     "shorter_answer_accuracy": 0.5}
    assert found["by_kind"]["b"]["shorter_answer_accuracy"] == 1.0 and found["by_kind"]["b"]["reward_accuracy"] == 0.5
    assert evaluation.shorter_answer_accuracy([pair("x", "ab", "ab")]) == 0.5  # a tie counts half


def test_text_bits_per_text_add_up_to_bits_per_byte(smol):
    model, tokenizer = smol
    texts = ["def add(a, b):\n    return a + b\n", "Le café coûte deux euros."]  # the second has 2-byte characters
    was_training = model.training
    model.train()
    try:
        found = evaluation.text_bits(model, tokenizer, texts)
        assert model.training  # scored in eval mode, then put back as it was
    finally:
        model.train(was_training)
    assert [f["bytes"] for f in found] == [len(t.encode("utf-8")) for t in texts] and found[1]["bytes"] > found[1]["chars"]
    assert [f["tokens"] for f in found] == [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert all(f["bits"] > 0 for f in found)
    pooled = sum(f["bits"] for f in found) / sum(f["bytes"] for f in found)
    assert pooled == pytest.approx(evaluation.bits_per_unit(model, tokenizer, texts, "byte"), rel=1e-6)
    with pytest.raises(ValueError, match="longer than max_length"):
        evaluation.text_bits(model, tokenizer, texts, max_length=4)


def test_preference_metrics_per_pair_and_the_results_shape(monkeypatch):
    def pair(kind, chosen, rejected):
        return {"kind": kind, "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "assistant", "content": chosen}], "rejected": [{"role": "assistant", "content": rejected}]}

    pairs = [pair("a", "short", "a longer one"), pair("b", "the longer chosen", "brief")]
    monkeypatch.setattr(evaluation, "pair_rewards", lambda *args: [((0.0, 0.0), 1.0), ((0.0, 0.0), 0.0)])
    before = evaluation.preference_metrics(None, None, pairs, beta=0.1)
    monkeypatch.setattr(evaluation, "pair_rewards", lambda *args: [((0.05, -0.2), 1.0), ((-0.1, 0.1), 1.0)])
    after = evaluation.preference_metrics(None, None, pairs, beta=0.1)
    assert after["per_pair"] == [{"kind": "a", "chosen": 0.05, "rejected": -0.2}, {"kind": "b", "chosen": -0.1, "rejected": 0.1}]
    changes = evaluation.preference_changes(before, after)
    assert changes["heldout_reward_accuracy"] == (0.5, 0.5) and changes["heldout_logprob_accuracy"] == (0.5, 1.0)
    assert changes["heldout_reward_margin"][0] == 0.0 and changes["heldout_reward_margin"][1] == pytest.approx((0.25 - 0.2) / 2)
    assert changes["heldout_by_kind"]["a"] == {"pairs": 1, "shorter_answer_accuracy": 1.0, "reward_accuracy": (0.5, 1.0),
                                               "reward_margin": (0.0, pytest.approx(0.25))}
    assert changes["heldout_by_kind"]["b"]["shorter_answer_accuracy"] == 0.0
    assert changes["heldout_by_kind"]["b"]["reward_accuracy"] == (0.5, 0.0)
