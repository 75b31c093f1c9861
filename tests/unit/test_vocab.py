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
    assert (new.eos_token, new.pad_token, new.chat_template) == (tokenizer.eos_token, tokenizer.pad_token, tokenizer.chat_template)


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


def test_new_embeddings_are_means_of_old_pieces(tokenizer, extended):
    import torch

    merges, new = extended
    emb = torch.nn.Embedding(len(tokenizer), 4)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = emb

        def get_input_embeddings(self):
            return self.emb

        def get_output_embeddings(self):
            return self.emb

        def resize_token_embeddings(self, n, mean_resizing=False):
            old = self.emb.weight.data
            self.emb = torch.nn.Embedding(n, 4)
            self.emb.weight.data[: old.shape[0]] = old

    tiny = Tiny()
    new_ids = vocab.init_new_embeddings(tiny, tokenizer, new)
    assert len(new_ids) == len(merges) and new_ids[0] == len(tokenizer)
    a, b = merges[0]
    expected = (emb.weight[tokenizer.convert_tokens_to_ids(a)] + emb.weight[tokenizer.convert_tokens_to_ids(b)]) / 2
    assert torch.allclose(tiny.emb.weight[new_ids[0]], expected)
