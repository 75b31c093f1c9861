import contextlib
import math
from types import SimpleNamespace

import pytest

from helpers import evaluation

CHAT = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "2 + 2 = 4."}]


def test_chat_labels_mask_the_prompt(tokenizer):
    ids, labels = evaluation.chat_example_ids(tokenizer, CHAT)
    assert len(ids) == len(labels)
    scored = tokenizer.decode([i for i, label in zip(ids, labels) if label != -100])
    assert scored.startswith("2 + 2 = 4.<|im_end|>")
    assert all(label == -100 for label in labels[: ids.index(tokenizer.convert_tokens_to_ids("<|im_start|>"), 5)])


def test_text_ids_score_every_token(tokenizer):
    ids, labels = evaluation.text_ids(tokenizer, "hello world")
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|endoftext|>") and labels[0] == -100
    assert labels[1:] == ids[1:]


def test_eval_loss_prefers_the_right_answer(smol):
    model, tokenizer = smol
    right = evaluation.eval_loss(model, tokenizer, [CHAT])
    nonsense = {"role": "assistant", "content": "Purple elephant seventeen."}
    wrong = evaluation.eval_loss(model, tokenizer, [[CHAT[0], nonsense]])
    assert 0 < right < wrong


class UniformLM:
    """A stand-in model whose logits are all zero: every next token has probability 1/V, so each scored token costs
    exactly ln V nats (log2 V bits) and the perplexity is V."""

    def __init__(self, vocab_size):
        import torch

        self.vocab_size, self.device, self.training = vocab_size, torch.device("cpu"), False

    def __call__(self, input_ids):
        import torch

        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab_size))

    def train(self, mode=True):
        self.training = mode

    def eval(self):
        self.training = False


def test_loss_perplexity_and_bits_of_a_uniform_model_by_hand(tokenizer):
    # Hand-computed goldens. Catches: a mean over the wrong token count (the masked prompt or the separator scored),
    # bits computed in nats (no / ln 2), a per-token instead of per-character denominator, and a perplexity that
    # is not exp(mean loss per token).
    vocab = len(tokenizer)  # 49,152
    model = UniformLM(vocab)
    loss = evaluation.eval_loss(model, tokenizer, [CHAT, [CHAT[0], {"role": "assistant", "content": "Four."}]])
    assert loss == pytest.approx(math.log(49152), rel=1e-6)
    assert evaluation.perplexity(loss) == pytest.approx(49152, rel=1e-5)
    # "The capital of France is": 5 tokens (the hub ids are checked in test_models.py), 24 characters
    assert evaluation.bits_per_unit(model, tokenizer, ["The capital of France is"], "char") == pytest.approx(
        5 * math.log2(49152) / 24, rel=1e-6)
    # "café" is 4 characters, 5 UTF-8 bytes: the two units differ by exactly 4/5 on the same bits
    bits = evaluation.text_bits(model, tokenizer, ["café"])[0]
    assert bits["bits"] == pytest.approx(bits["tokens"] * math.log2(49152), rel=1e-6)
    assert (bits["chars"], bits["bytes"]) == (4, 5)
    per_byte = evaluation.bits_per_unit(model, tokenizer, ["café"], "byte")
    assert per_byte == pytest.approx(evaluation.bits_per_unit(model, tokenizer, ["café"], "char") * 4 / 5, rel=1e-6)


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
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}

    pairs = [pair("a", "short", "much longer answer"), pair("a", "a long chosen answer", "brief"),
             pair("b", "same", "same!")]
    # rewards (chosen, rejected) and log-prob wins, as pair_rewards would give them
    given = [((0.3, 0.1), 1.0), ((0.0, 0.2), 0.0), ((0.1, 0.1), 0.5)]
    monkeypatch.setattr(evaluation, "pair_rewards", lambda *args: given)
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
    assert [f["bytes"] for f in found] == [len(t.encode("utf-8")) for t in texts]
    assert found[1]["bytes"] > found[1]["chars"]
    assert [f["tokens"] for f in found] == [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert all(f["bits"] > 0 for f in found)
    pooled = sum(f["bits"] for f in found) / sum(f["bytes"] for f in found)
    assert pooled == pytest.approx(evaluation.bits_per_unit(model, tokenizer, texts, "byte"), rel=1e-6)
    with pytest.raises(ValueError, match="longer than max_length"):
        evaluation.text_bits(model, tokenizer, texts, max_length=4)


def test_preference_metrics_per_pair_and_the_results_shape(monkeypatch):
    def pair(kind, chosen, rejected):
        return {"kind": kind, "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "assistant", "content": chosen}],
                "rejected": [{"role": "assistant", "content": rejected}]}

    pairs = [pair("a", "short", "a longer one"), pair("b", "the longer chosen", "brief")]
    monkeypatch.setattr(evaluation, "pair_rewards", lambda *args: [((0.0, 0.0), 1.0), ((0.0, 0.0), 0.0)])
    before = evaluation.preference_metrics(None, None, pairs, beta=0.1)
    monkeypatch.setattr(evaluation, "pair_rewards", lambda *args: [((0.05, -0.2), 1.0), ((-0.1, 0.1), 1.0)])
    after = evaluation.preference_metrics(None, None, pairs, beta=0.1)
    assert after["per_pair"] == [{"kind": "a", "chosen": 0.05, "rejected": -0.2},
                                 {"kind": "b", "chosen": -0.1, "rejected": 0.1}]
    changes = evaluation.preference_changes(before, after)
    assert changes["heldout_reward_accuracy"] == (0.5, 0.5) and changes["heldout_logprob_accuracy"] == (0.5, 1.0)
    assert changes["heldout_reward_margin"] == (0.0, pytest.approx((0.25 - 0.2) / 2))
    assert changes["heldout_by_kind"]["a"] == {
        "pairs": 1, "shorter_answer_accuracy": 1.0, "reward_accuracy": (0.5, 1.0),
        "reward_margin": (0.0, pytest.approx(0.25)),
    }
    assert changes["heldout_by_kind"]["b"]["shorter_answer_accuracy"] == 0.0
    assert changes["heldout_by_kind"]["b"]["reward_accuracy"] == (0.5, 0.0)


def pair(kind, prompt, chosen, rejected):
    return {"kind": kind, "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


PAIRS = [pair("correct-vs-wrong", "What is 2 + 2?", "2 + 2 = 4.", "2 + 2 = 5."),
         pair("helpful-vs-evasive", "Name a primary colour.", "Red is a primary colour.", "I would rather not say."),
         pair("correct-vs-wrong", "What is the capital of France?", "Paris.", "Lyon, I think.")]


def tiny_lora_model(vocab_size):
    """A tiny random Llama with a fresh LoRA adapter (PEFT's default init: B = 0, so the adapter changes nothing yet),
    and an independent copy of the base model without any adapter."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256)
    base = LlamaForCausalLM(config).eval()
    reference = copy.deepcopy(base)
    policy = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    return policy, reference


def test_preference_metrics_of_a_fresh_adapter_tie_then_follow_the_trained_one(tokenizer):
    # Catches: a reference that is not the adapter-off model (after the adapter moves, the rewards must equal
    # beta * (log pi - log pi_ref) against an independent copy of the base model), a sign or beta slip, and a fresh
    # adapter that does not score 0.5 / 0.0 (03's "before" column, asserted in tests/results).
    import torch

    policy, reference = tiny_lora_model(len(tokenizer))
    fresh = evaluation.preference_metrics(policy, tokenizer, PAIRS, beta=0.1)
    assert fresh["reward_accuracy"] == 0.5 and fresh["reward_margin"] == 0.0
    assert all(p["chosen"] == 0.0 and p["rejected"] == 0.0 for p in fresh["per_pair"])
    with torch.no_grad():  # "train" the adapter: B away from zero
        for name, weight in policy.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 0.5)
    moved = evaluation.preference_metrics(policy, tokenizer, PAIRS, beta=0.1)
    for p, found in zip(PAIRS, moved["per_pair"]):
        for side in ("chosen", "rejected"):
            expected = 0.1 * (evaluation.completion_logprob(policy, tokenizer, p["prompt"], p[side])
                              - evaluation.completion_logprob(reference, tokenizer, p["prompt"], p[side]))
            assert abs(expected) > 1e-4 and found[side] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    margins = [p["chosen"] - p["rejected"] for p in moved["per_pair"]]
    assert moved["reward_margin"] == pytest.approx(sum(margins) / 3)
    assert moved["reward_accuracy"] == sum(m > 0 for m in margins) / 3


class FakeAdapterModel:
    """Only what pair_rewards touches: disable_adapter() as a context manager that switches the adapter off."""

    def __init__(self):
        self.adapter_on = True

    @contextlib.contextmanager
    def disable_adapter(self):
        self.adapter_on = False
        try:
            yield
        finally:
            self.adapter_on = True


def test_preference_metrics_on_hand_built_log_probs(monkeypatch):
    # Log-probabilities chosen by hand (policy with the adapter, reference without), results worked out on paper.
    # Catches: reward accuracy taken from the policy's log-probs alone (pair 2 tells them apart), reference and policy
    # swapped (all signs flip), beta not applied, and ties not counted half.
    table = {  # answer -> (policy log p, reference log p)
        "A1": (-10.0, -11.0), "B1": (-12.0, -11.0),  # rewards +0.1 / -0.1: margin 0.2, policy prefers chosen
        "A2": (-20.0, -22.0), "B2": (-15.0, -15.0),  # rewards +0.2 / 0.0: margin 0.2, but the policy alone prefers B2
        "A3": (-5.0, -5.0), "B3": (-5.0, -5.0),      # policy == reference: margin 0, a tie both ways
    }
    model = FakeAdapterModel()

    def logprob(model_, tokenizer, prompt, completion, max_length=1024):
        return table[completion[0]["content"]][0 if model_.adapter_on else 1]

    monkeypatch.setattr(evaluation, "completion_logprob", logprob)
    pairs = [pair("x", "q1", "A1", "B1"), pair("x", "q2", "A2", "B2"), pair("y", "q3", "A3", "B3")]
    found = evaluation.preference_metrics(model, None, pairs, beta=0.1)
    assert found["reward_accuracy"] == pytest.approx(2.5 / 3)  # wins, wins, tie
    assert found["reward_margin"] == pytest.approx(0.4 / 3)
    assert found["logprob_accuracy"] == pytest.approx(1.5 / 3)  # prefers A1, prefers B2, tie
    assert [(p["chosen"], p["rejected"]) for p in found["per_pair"]] == [
        (pytest.approx(0.1), pytest.approx(-0.1)), (pytest.approx(0.2), pytest.approx(0.0)), (0.0, 0.0)]
    assert found["by_kind"]["x"]["reward_accuracy"] == 1.0 and found["by_kind"]["y"]["reward_accuracy"] == 0.5
    assert model.adapter_on  # switched back on after scoring the reference


def test_answer_is_right_reads_the_first_sentence_only():
    from helpers.evaluation import answer_is_right

    assert answer_is_right("The capital city of Norway is Oslo.", ["Oslo"])
    assert answer_is_right("oslo", ["Oslo"])  # case does not matter
    assert not answer_is_right("Parisian cafés are famous.", ["Paris"])  # whole words only
    # a right word after a wrong first sentence does not count
    assert not answer_is_right("The planet we live on is called Kepler-41B. It is like Earth.", ["Earth"])
    assert answer_is_right("There are about 9.4 planets, or 8.", ["8", "eight"])  # a decimal point ends no sentence
    assert answer_is_right("Half of 50 is 25\nand more", ["25"]) and not answer_is_right("", ["25"])
    assert answer_is_right("A minute has sixty seconds.", ["60", "sixty"])


def test_fact_check_asks_greedily_and_judges_each_answer(monkeypatch):
    from helpers import evaluation, generation

    asked = {}

    def fake_generate(model, tokenizer, prompts, max_new_tokens):
        asked.update(prompts=prompts, tokens=max_new_tokens)
        return ["Paris is the capital.", "I do not know."]

    monkeypatch.setattr(generation, "generate", fake_generate)
    facts = [{"question": "Capital of France?", "answers": ["Paris"]}, {"question": "2 + 2?", "answers": ["4", "four"]}]
    rows = evaluation.fact_check(None, None, facts, max_new_tokens=16)
    assert asked == {"prompts": ["Capital of France?", "2 + 2?"], "tokens": 16}
    assert [r["right"] for r in rows] == [True, False] and rows[1]["answer"] == "I do not know."
