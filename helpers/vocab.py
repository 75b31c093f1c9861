"""Vocabulary extension for a new script (notebook 05): learn Hindi BPE merges on top of the base tokenizer,
append them, and initialise the new embedding rows from the old pieces (EEVE-style)."""

from __future__ import annotations

import functools
import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

# GPT-2's split regex with one change: letters may carry combining marks ([\p{L}\p{M}] instead of \p{L}).
# Devanagari vowel signs are marks (\p{M}); without this a Hindi word is cut at every vowel sign before BPE runs.
MARK_AWARE_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?[\p{L}\p{M}]+| ?\p{N}+| ?[^\s\p{L}\p{M}\p{N}]+|\s+(?!\S)|\s+"
DEVANAGARI_BYTES = frozenset([0x20, 0xE0]) | frozenset(range(0x80, 0xC0))


def mark_aware_pre_tokenizer() -> Any:
    """The base pre-tokenizer (single digits, byte-level) with the mark-aware split regex."""
    from tokenizers import Regex, pre_tokenizers

    return pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split(Regex(MARK_AWARE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])


@functools.lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's unicode -> byte table (the inverse of the byte-level alphabet that transformers builds)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def token_bytes(token: str) -> bytes:
    """The raw bytes behind a byte-level BPE token string (e.g. 'Ġà¤¨' -> b' \\xe0\\xa4\\xa8')."""
    table = _byte_decoder()
    return bytes(table[c] for c in token)


def is_devanagari_token(token: str) -> bool:
    """True when a byte-level token holds only bytes that occur in Devanagari UTF-8 (and spaces), and some Devanagari
    lead byte."""
    raw = token_bytes(token)
    return 0xE0 in raw and set(raw) <= DEVANAGARI_BYTES


def learn_merges(tokenizer: Any, texts: list[str], num_merges: int, min_frequency: int = 2) -> list[tuple[str, str]]:
    """BPE merges learned *on top of* the base tokenizer's own segmentation of the Hindi words in `texts`.

    Because every new merge ranks after all base merges, the base tokenizer first produces exactly the segmentation
    these merges were learned on, and then applies them in order: each new token is reachable. (Training a separate
    BPE from raw bytes and pasting its merges does not have this property.)
    """
    backend = tokenizer.backend_tokenizer
    pre = mark_aware_pre_tokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        for word, _ in pre.pre_tokenize_str(text):
            counts[word] += 1
    words = {w: [t.value for t in backend.model.tokenize(w)] for w in counts if is_devanagari_token(w)}
    vocab = backend.get_vocab()
    merges: list[tuple[str, str]] = []
    while len(merges) < num_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, pieces in words.items():
            for pair in zip(pieces, pieces[1:]):
                pairs[pair] += counts[word]
        if not pairs:
            break
        (a, b), freq = pairs.most_common(1)[0]
        if freq < min_frequency:
            break
        if a + b not in vocab:
            merges.append((a, b))
            vocab[a + b] = -1
        for word, pieces in words.items():
            merged, i = [], 0
            while i < len(pieces):
                if i + 1 < len(pieces) and pieces[i] == a and pieces[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(pieces[i])
                    i += 1
            words[word] = merged
    return merges


def extend_tokenizer(tokenizer: Any, merges: list[tuple[str, str]], save_dir: str | Path | None = None) -> Any:
    """A copy of `tokenizer` with the new merges (and their tokens, ids after the old ones) and the mark-aware
    pre-tokenizer. Old token ids are unchanged. Special tokens and the chat template are kept."""
    from transformers import AutoTokenizer

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab, old_merges = spec["model"]["vocab"], spec["model"]["merges"]
    # An added token beyond the BPE vocabulary (e.g. an upload's extra <|PAD_TOKEN|> at id 49,152) goes into it at its
    # own id: `tokenizers` numbers added tokens missing from a model by the model's size, which would collide with ours.
    for added in spec.get("added_tokens", []):
        if added["content"] not in vocab:
            vocab[added["content"]] = added["id"]
    next_id = max(vocab.values()) + 1
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = next_id
            next_id += 1
        old_merges.append([a, b] if old_merges and isinstance(old_merges[0], list) else f"{a} {b}")
    spec["pre_tokenizer"] = json.loads(mark_aware_pre_tokenizer().__getstate__())
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(save_dir) if save_dir is not None else Path(tmp)
        tokenizer.save_pretrained(target)
        (target / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        extended = AutoTokenizer.from_pretrained(target)
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        setattr(extended, name, getattr(tokenizer, name))
    extended.chat_template = tokenizer.chat_template
    return extended


def init_new_embeddings(model: Any, old_tokenizer: Any, new_tokenizer: Any) -> list[int]:
    """Resize the model's embeddings to the new vocabulary and initialise the new rows as EEVE does:
    input row = mean of the input rows of the token's old pieces; output (lm_head) row = the output row of its *first*
    old piece, so that the new token starts with the score the model already gives the piece it begins with.

    A model with tied input and output embeddings (SmolLM2) is untied first: one matrix cannot hold both starts.
    Returns the new token ids.
    """
    import torch

    old_size = len(old_tokenizer)
    new_vocab = new_tokenizer.get_vocab()
    new_ids = sorted(i for i in new_vocab.values() if i >= old_size)
    model.resize_token_embeddings(len(new_tokenizer), mean_resizing=False)
    inputs = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    if head.weight.data_ptr() == inputs.data_ptr():
        head.weight = torch.nn.Parameter(inputs.detach().clone(), requires_grad=inputs.requires_grad)
        model.config.tie_word_embeddings = False
        model.config.get_text_config().tie_word_embeddings = False
    old_model = old_tokenizer.backend_tokenizer.model
    by_id = {i: t for t, i in new_vocab.items()}
    with torch.no_grad():
        for new_id in new_ids:
            pieces = [old_model.token_to_id(t.value) for t in old_model.tokenize(by_id[new_id])]
            inputs[new_id] = inputs[pieces].mean(dim=0)
            head.weight[new_id] = head.weight[pieces[0]]
    return new_ids


def embedding_copies(model: Any) -> list[Any]:
    """The trainable `embed_tokens` / `lm_head` copies that PEFT's `modules_to_save` made: two matrices, or one when
    they stay tied (the same tensor is listed once)."""
    found: list[Any] = []
    for name, p in model.named_parameters(remove_duplicate=False):
        if name.endswith("modules_to_save.default.weight") and all(p is not q for q in found):
            found.append(p)
    if not found:
        raise ValueError(
            "no modules_to_save copies found: add the adapters with modules_to_save=['embed_tokens', 'lm_head'] first"
        )
    return found


def train_new_rows_only(model: Any, new_ids: list[int]) -> Any:
    """EEVE's first stage: freeze every weight except the embedding copies, and mask their gradients so that only the
    rows of `new_ids` learn (the old rows get a zero gradient, so Adam without weight decay leaves them exactly as they
    were). Returns a function that undoes it: hooks removed, the earlier trainable flags restored."""
    import torch

    flags = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    handles = []
    for weight in embedding_copies(model):
        mask = torch.zeros(weight.shape[0], 1, dtype=weight.dtype, device=weight.device)
        mask[new_ids] = 1.0
        weight.requires_grad_(True)
        handles.append(weight.register_hook(lambda grad, mask=mask: grad * mask))

    def undo() -> None:
        for handle in handles:
            handle.remove()
        for p in model.parameters():
            p.requires_grad_(flags[id(p)])

    return undo


def readable_tokens(tokenizer: Any, text: str) -> list[str]:
    """The tokens of `text` as text: each byte-level token decoded from its raw bytes. Bytes that are only part of a
    character (a Devanagari letter is 3 bytes in UTF-8) show as escapes: SmolLM2's tokenizer cuts 'बहन' into
    ['\\xe0\\xa4', '\\xac', '\\xe0\\xa4', '\\xb9', 'न'] (ब, ह: two fragments each; न: one whole token)."""
    return [token_bytes(t).decode("utf-8", errors="backslashreplace") for t in tokenizer.tokenize(text)]


def segmentation_rows(words: list[str], tokenizers: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per word, cut as it is inside a sentence (after a space, shown as '␣'): for each named tokenizer, how
    many tokens the word costs and the tokens themselves (readable_tokens, joined by ' · ')."""
    rows = []
    for word in words:
        row: dict[str, Any] = {"word": word}
        for name, tok in tokenizers.items():
            pieces = [piece.replace(" ", "␣") for piece in readable_tokens(tok, " " + word)]
            row[f"{name}: tokens"] = len(pieces)
            row[f"{name}: pieces"] = " · ".join(pieces)
        rows.append(row)
    return rows
