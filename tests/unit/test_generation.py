import pytest

from helpers import generation


def test_greedy_generation_is_deterministic(smol):
    model, tokenizer = smol
    prompts = ["Name a primary colour.", [{"role": "user", "content": "What is 2 + 2?"}]]
    first = generation.generate(model, tokenizer, prompts, max_new_tokens=12)
    assert first == generation.generate(model, tokenizer, prompts, max_new_tokens=12)
    assert len(first) == 2 and all(isinstance(a, str) and a for a in first)
    assert "<|im_end|>" not in first[0]


def test_raw_text_continuation(smol):
    model, tokenizer = smol
    out = generation.generate(model, tokenizer, ["def add(a, b):\n    return"], max_new_tokens=5, chat=False)
    assert out[0]
    # The continuation keeps its leading whitespace (the space before the returned expression): prompt + answer is
    # the text the model wrote. (Chat answers are stripped.)
    assert out[0][0].isspace() and not out[0].endswith((" ", "\n"))


def test_generation_keeps_training_mode(smol):
    model, tokenizer = smol
    model.train()
    generation.generate(model, tokenizer, ["Hi"], max_new_tokens=2)
    assert model.training
    model.eval()


def test_comparison_rows():
    rows = generation.comparison_rows(
        ["Q1", [{"role": "user", "content": "Q2"}]], {"before": ["a", "b"], "after": ["c", "<d>"]}
    )
    assert rows == [{"prompt": "Q1", "before": "a", "after": "c"}, {"prompt": "Q2", "before": "b", "after": "<d>"}]
    with pytest.raises(ValueError, match="has 1 answers for 2 prompts"):
        generation.comparison_rows(["Q1", "Q2"], {"before": ["a"]})


def test_show_comparison_prints_outside_jupyter(capsys):
    rows = generation.show_comparison(["Q"], ["old"], ["new"])
    assert rows == [{"prompt": "Q", "before": "old", "after": "new"}]
    assert "before: old" in capsys.readouterr().out


def test_batched_answers_equal_one_by_one(smol):
    model, tokenizer = smol
    prompts = ["What is 3 + 5?", "Name a fruit that is yellow.", "Say hello in French."]
    batched = generation.generate(model, tokenizer, prompts, max_new_tokens=10, batch_size=3)
    single = [generation.generate(model, tokenizer, [p], max_new_tokens=10)[0] for p in prompts]
    assert batched == single
    assert tokenizer.padding_side == "right"  # restored


def test_loop_check_flags_loops_and_the_wrong_script():
    looped = generation.loop_check("में में में में में में")
    assert looped["script_share"] == 1.0 and looped["distinct_bigrams"] == 0.2 and not looped["passes"]
    fluent = generation.loop_check("मैं आज बाज़ार जा रहा हूँ और फल खरीदूँगा")
    assert fluent == {"script_share": 1.0, "distinct_bigrams": 1.0, "passes": True}
    english = generation.loop_check("I am going to the market today")
    assert english["script_share"] == 0.0 and not english["passes"]
    assert generation.loop_check("")["passes"] is False


def test_seeded_sampling_repeats_and_generate_kwargs_reach_generate(smol):
    model, tokenizer = smol
    prompt = ["Once upon a time"]
    first = generation.generate(model, tokenizer, prompt, 12, temperature=1.0, chat=False, seed=7)
    assert first == generation.generate(model, tokenizer, prompt, 12, temperature=1.0, chat=False, seed=7)
    exact = generation.generate(model, tokenizer, prompt, 12, chat=False, min_new_tokens=12)
    assert len(tokenizer(exact[0], add_special_tokens=False)["input_ids"]) >= 10


def test_anti_repetition_settings_reach_model_generate(smol, monkeypatch):
    model, tokenizer = smol
    seen = []
    original = model.generate

    def spy(**kwargs):
        seen.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(model, "generate", spy)
    prompt = ["में में में में में में"]
    plain = generation.generate(model, tokenizer, prompt, 16, chat=False)
    anti = {"repetition_penalty": 1.3, "no_repeat_ngram_size": 3}
    varied = generation.generate(model, tokenizer, prompt, 16, chat=False, **anti)
    assert "repetition_penalty" not in seen[0] and {k: seen[1][k] for k in anti} == anti
    assert varied != plain


def test_whole_characters_drops_a_character_cut_at_the_end(tokenizer):
    text = "नमस्ते दुनिया, आज सुबह मैं"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    cuts = 0
    for k in range(1, len(ids) + 1):
        plain = tokenizer.decode(ids[:k], skip_special_tokens=True)
        whole = generation.whole_characters(tokenizer, ids[:k])
        assert "\ufffd" not in whole and text.startswith(whole), (k, whole)
        if plain.endswith("\ufffd"):  # the token limit fell inside a letter: only that letter goes
            cuts += 1
            assert whole == plain[:-1]
        else:
            assert whole == plain
    assert cuts >= 3  # SmolLM2 cuts a Devanagari letter into byte tokens: many prefixes end inside one
    # special tokens (padding after an early stop) are skipped as before
    assert generation.whole_characters(tokenizer, ids[:7] + [tokenizer.pad_token_id] * 2) == text[:7]


def test_whole_characters_leaves_english_and_a_written_replacement_character_alone(tokenizer):
    text = "Once upon a time, a café in Zürich served 3 kinds of tea. \ufffd"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    for k in range(1, len(ids) + 1):
        assert generation.whole_characters(tokenizer, ids[:k]) == tokenizer.decode(ids[:k], skip_special_tokens=True)


def test_generated_hindi_never_ends_in_a_cut_character(smol, monkeypatch):
    model, tokenizer = smol
    prompts = ["नमस्ते, मेरा नाम", "आज सुबह मैं", "हमारे गाँव में", "दिवाली के दिन"]
    fixed = [a for n in range(1, 7) for a in generation.generate(model, tokenizer, prompts, n, chat=False)]
    monkeypatch.setattr(generation, "whole_characters",
                        lambda tok, ids: tok.decode(ids, skip_special_tokens=True))  # the decode before the fix
    raw = [a for n in range(1, 7) for a in generation.generate(model, tokenizer, prompts, n, chat=False)]
    assert any(a.endswith("\ufffd") for a in raw), "no continuation was cut inside a letter: the test shows nothing"
    assert not any(a.endswith("\ufffd") for a in fixed)
    assert fixed == [a[:-1].rstrip() if a.endswith("\ufffd") else a for a in raw]


def test_decoding_speed_feeds_every_token_of_the_texts(smol):
    model, tokenizer = smol
    texts = ["नमस्ते, आप कैसे हैं?", "Once upon a time"]
    speed = generation.decoding_speed(model, tokenizer, texts)
    assert speed["chars"] == sum(map(len, texts))
    assert speed["tokens"] == sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert speed["seconds"] > 0
    assert abs(speed["chars_per_second"] - speed["chars"] / speed["seconds"]) < 0.05 * speed["chars_per_second"]
    assert not model.training
