import pytest

from helpers import vocab

HINDI = ["नमस्ते, मेरा नाम अनीता है। मैं दिल्ली में रहती हूँ।", "आप कैसे हैं? मैं ठीक हूँ, धन्यवाद।", "मेरा घर दिल्ली में है।"] * 4


def test_byte_level_helpers():
    assert vocab.token_bytes("Ġà¤¨") == " न".encode()
    assert vocab.is_devanagari_token("Ġà¤¨") and not vocab.is_devanagari_token("Ġthe")


def test_mark_aware_split_keeps_vowel_signs_in_words():
    words = [w for w, _ in vocab.mark_aware_pre_tokenizer().pre_tokenize_str("नमस्ते दिल्ली")]
    assert [vocab.token_bytes(w).decode() for w in words] == ["नमस्ते", " दिल्ली"]


@pytest.fixture(scope="module")
def extended(tokenizer):
    merges = vocab.learn_merges(tokenizer, HINDI, num_merges=40)
    return merges, vocab.extend_tokenizer(tokenizer, merges)


def test_extension_shortens_hindi_and_keeps_english(tokenizer, extended):
    merges, new = extended
    assert 0 < len(merges) <= 40
    assert len(new) == len(tokenizer) + len(merges)
    hindi = "नमस्ते, मेरा नाम अनीता है।"
    assert len(new(hindi)["input_ids"]) < len(tokenizer(hindi)["input_ids"]) / 2
    assert new.decode(new(hindi)["input_ids"]) == hindi
    for english in ["Hello, how are you? I have 12 apples.", "def f(x):\n    return x\n"]:
        assert new(english)["input_ids"] == tokenizer(english)["input_ids"]
    for name in ("eos_token", "pad_token", "chat_template"):
        assert getattr(new, name) == getattr(tokenizer, name), name


def test_every_learned_token_is_reachable(extended):
    merges, new = extended
    checked = 0
    for a, b in merges:
        try:
            text = vocab.token_bytes(a + b).decode("utf-8")
        except UnicodeDecodeError:
            continue  # part of a character: only reachable inside longer text
        if text.strip() == text:
            assert new.tokenize(text) == [a + b]
            checked += 1
    assert checked > 5


@pytest.mark.parametrize("tied", [True, False])
def test_new_rows_start_from_their_pieces_eeve_style(tokenizer, extended, tied):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    merges, new = extended
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied)
    model = LlamaForCausalLM(config)
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    new_ids = vocab.init_new_embeddings(model, tokenizer, new)
    assert len(new_ids) == len(merges) and new_ids[0] == len(tokenizer)
    inputs, outputs = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert inputs.shape[0] == outputs.shape[0] == len(new)
    assert inputs.data_ptr() != outputs.data_ptr() and model.config.tie_word_embeddings is False  # untied
    a, b = (tokenizer.convert_tokens_to_ids(t) for t in merges[0])  # the first merge joins two old tokens
    assert torch.allclose(inputs[new_ids[0]], (old_in[a] + old_in[b]) / 2)  # input: mean of the pieces
    assert torch.equal(outputs[new_ids[0]], old_out[a])  # output: the first piece
    # old rows kept
    assert torch.equal(inputs[: len(tokenizer)], old_in) and torch.equal(outputs[: len(tokenizer)], old_out)


# (tied model, modules_to_save, ensure_weight_tying, copies): PEFT as the notebooks' CPU runs call it (either engine),
# on a tied and an untied model; and as Unsloth calls it on a GPU for a tied model (unsloth 2026.10.9's
# _drop_tied_output_module: only embed_tokens, with ensure_weight_tying=True), where lm_head shares the one copy.
PEFT_CASES = {
    "cpu-tied": (True, ["embed_tokens", "lm_head"], False, 2),
    "cpu-untied": (False, ["embed_tokens", "lm_head"], False, 2),
    "gpu-unsloth-tied": (True, ["embed_tokens"], True, 1),
}


@pytest.mark.parametrize("case", PEFT_CASES)
def test_stage_one_trains_only_the_new_rows_then_undo_restores_training(case):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers import plain

    tied, modules, ensure_tying, n_copies = PEFT_CASES[case]
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied)
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], modules_to_save=modules,
                      ensure_weight_tying=ensure_tying)
    model = get_peft_model(LlamaForCausalLM(config), lora)
    copies = vocab.embedding_copies(model)
    assert len(copies) == n_copies  # PEFT gives each module its own copy, tied or not, unless asked to keep the tie
    # what notebook 05's add_adapters checks and prints: both modules have a trainable copy, shared or not
    named = {n: w for n, w in model.named_parameters(remove_duplicate=False)
             if n.endswith("modules_to_save.default.weight") and w.requires_grad}
    assert len(named) == 2 and (n_copies == 1) == (len({id(w) for w in named.values()}) == 1)
    assert model.get_output_embeddings().weight is copies[-1]  # lm_head scores with the (last) trained copy
    assert len(plain.embedding_parameters(model)[0]) == n_copies  # CPTTrainer's embedding group: each copy once
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    rows_before = [c.detach().clone() for c in copies]
    new_ids = [36, 37, 38, 39]
    undo = vocab.train_new_rows_only(model, new_ids)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == n_copies and all(any(p is c for c in copies) for p in trainable)
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.0)
    ids = torch.randint(0, 40, (2, 12))
    for _ in range(3):
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    old = [i for i in range(40) if i not in new_ids]
    for copy, start in zip(copies, rows_before):
        assert torch.equal(copy[old], start[old]), "an old row moved in stage 1"
        assert not torch.equal(copy[new_ids], start[new_ids]), "the new rows did not train"
    assert all(torch.equal(p, lora_before[n]) for n, p in model.named_parameters() if "lora_" in n)
    undo()
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n or "modules_to_save" in n)
    model(input_ids=ids, labels=ids).loss.backward()
    assert all(float(c.grad[old].abs().sum()) > 0 for c in copies), "the mask is still on after undo()"


def test_embedding_copies_needs_modules_to_save():
    import torch

    with pytest.raises(ValueError, match="modules_to_save"):
        vocab.embedding_copies(torch.nn.Linear(2, 2))


def test_readable_tokens_decode_whole_characters_and_escape_fragments(tokenizer):
    assert vocab.readable_tokens(tokenizer, "Hello world") == ["Hello", " world"]
    pieces = vocab.readable_tokens(tokenizer, "बहन")
    assert pieces == ["\\xe0\\xa4", "\\xac", "\\xe0\\xa4", "\\xb9", "न"]  # ब and ह are cut into byte fragments
    assert len(pieces) == len(tokenizer.tokenize("बहन"))


def test_segmentation_rows_count_tokens_per_word_for_each_tokenizer(tokenizer, extended):
    _, new = extended
    rows = vocab.segmentation_rows(["नमस्ते", "the"], {"base": tokenizer, "extended": new})
    assert [row["word"] for row in rows] == ["नमस्ते", "the"]
    hindi, english = rows
    assert hindi["base: tokens"] == len(tokenizer.tokenize(" नमस्ते")) > hindi["extended: tokens"] >= 1
    assert hindi["extended: pieces"].startswith("␣") and hindi["base: pieces"].count(" · ") == hindi["base: tokens"] - 1
    assert english["base: tokens"] == english["extended: tokens"] == 1 and english["base: pieces"] == "␣the"


def old_pieces(token, merges, old_vocab):
    """The old tokens a new token is built from, by undoing the learned merges (an independent route to what
    init_new_embeddings reads from the old tokenizer)."""
    if token in old_vocab:
        return [token]
    a, b = next((a, b) for a, b in merges if a + b == token)
    return old_pieces(a, merges, old_vocab) + old_pieces(b, merges, old_vocab)


def test_new_rows_of_a_real_untied_model(tokenizer, extended):
    # The real SmolLM2-135M loaded untied (tie_word_embeddings=False: its lm_head is a matrix of its own, unlike the
    # input embeddings). Catches: new output rows copied from the input matrix (or the mean of the pieces), input
    # rows from the output matrix, any old row of either matrix moved by the resize, the matrices re-tied, and new
    # tokens that do not start with the score of their first piece.
    import torch
    from transformers import AutoModelForCausalLM

    from helpers import models

    merges, new = extended
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(models.offline_model_dir(), dtype=torch.float32,
                                                 tie_word_embeddings=False)
    model.eval()
    old_in = model.get_input_embeddings().weight.detach().clone()
    old_out = model.get_output_embeddings().weight.detach().clone()
    assert model.config.tie_word_embeddings is False and not torch.equal(old_in, old_out)  # really untied
    english = torch.tensor([tokenizer("The capital of France is Paris.")["input_ids"]])
    with torch.no_grad():
        logits_before = model(input_ids=english).logits
    new_ids = vocab.init_new_embeddings(model, tokenizer, new)
    inputs, outputs = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    old_size, old_vocab = len(tokenizer), tokenizer.get_vocab()
    assert new_ids == list(range(old_size, old_size + len(merges))) and inputs.shape[0] == outputs.shape[0] == len(new)
    assert inputs.data_ptr() != outputs.data_ptr() and model.config.tie_word_embeddings is False
    assert torch.equal(inputs[:old_size], old_in) and torch.equal(outputs[:old_size], old_out)  # old rows kept
    built_from_new = 0
    for new_id in new_ids:
        token = new.convert_ids_to_tokens(new_id)
        pieces = [old_vocab[p] for p in old_pieces(token, merges, old_vocab)]
        built_from_new += len(pieces) > 2
        assert torch.allclose(inputs[new_id], old_in[pieces].mean(dim=0), atol=1e-6), token  # input: mean of the pieces
        assert torch.equal(outputs[new_id], old_out[pieces[0]]), token  # output: the first piece's row
    assert built_from_new > 0  # some new tokens are merges of new tokens: more than two old pieces
    with torch.no_grad():
        logits_after = model(input_ids=english).logits
    assert torch.allclose(logits_after[..., :old_size], logits_before, atol=1e-5)  # the old model, unchanged
    first_piece = old_vocab[old_pieces(new.convert_ids_to_tokens(new_ids[0]), merges, old_vocab)[0]]
    # a new token starts with the score its first piece gets
    assert torch.equal(logits_after[..., new_ids[0]], logits_after[..., first_piece])
