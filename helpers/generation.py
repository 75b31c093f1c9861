"""Generate answers (greedy by default) and show before/after comparisons (tables: helpers.display)."""

from __future__ import annotations

import codecs
import re
import time
from typing import Any

from helpers import display

Prompt = str | list[dict[str, str]]
DEVANAGARI = re.compile(r"[\u0900-\u097F]")  # a Devanagari letter or sign (helpers.corpora uses it too)


def as_messages(prompt: Prompt) -> list[dict[str, str]]:
    """A plain string becomes one user message; a message list is used as it is."""
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[Prompt],
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    chat: bool = True,
    batch_size: int = 8,
    top_p: float = 0.95,
    seed: int | None = None,
    **generate_kwargs: Any,
) -> list[str]:
    """Answer each prompt; temperature 0 means greedy (deterministic), otherwise sampled with nucleus `top_p`
    (reproducibly when `seed` is given). Extra keyword arguments go to `model.generate`, e.g. `repetition_penalty=1.2`
    or `no_repeat_ngram_size=3`. chat=False continues raw text (leading
    whitespace kept, so that prompt + answer is the continued text).

    Prompts are batched with left padding, so that every answer starts right after its prompt. An answer that
    `max_new_tokens` cut inside a character ends before it (whole_characters).
    """
    import torch

    texts = [
        tokenizer.apply_chat_template(as_messages(p), tokenize=False, add_generation_prompt=True) if chat else p
        for p in prompts
    ]
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_p": top_p} if temperature > 0 else {"do_sample": False}
    )
    was_training, side = model.training, tokenizer.padding_side
    model.eval()
    tokenizer.padding_side = "left"
    answers = []
    if seed is not None:
        from transformers import set_seed

        set_seed(seed)
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
            )
            batch = batch.to(model.device)
            with torch.no_grad():
                output = model.generate(
                    **batch,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    **sampling,
                    **generate_kwargs,
                )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            decoded = [whole_characters(tokenizer, row) for row in new_tokens.tolist()]
            # A raw continuation keeps its leading whitespace: it may be the newline and indent that continue a line.
            answers += [a.strip() if chat else a.rstrip() for a in decoded]
    finally:
        model.train(was_training)
        tokenizer.padding_side = side
    return answers


def whole_characters(tokenizer: Any, ids: list[int]) -> str:
    """`ids` decoded (special tokens skipped), without the character that `max_new_tokens` cut: a byte-level tokenizer
    writes a Devanagari letter (3 bytes in UTF-8) as one to three tokens, and decoding only the first shows U+FFFD
    ("�"). The tokens' bytes say whether the text ends inside a character; only then is that last "�" dropped, so text
    that ends on a whole character (all English) decodes exactly as `tokenizer.decode` does."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    if not text.endswith("\ufffd"):
        return text
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {char: byte for byte, char in bytes_to_unicode().items()}  # byte-level BPE's alphabet, as vocab reads it
    try:
        raw = bytes(byte_of[c] for t in tokenizer.convert_ids_to_tokens(ids, skip_special_tokens=True) for c in t)
    except KeyError:  # not a byte-level tokenizer: its "�" is no cut byte sequence
        return text
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    decoder.decode(raw, final=False)  # holds back an incomplete character at the end, and only that
    cut = decoder.getstate()[0]
    return text[:-1] if cut else text


def prompt_text(prompt: Prompt) -> str:
    """The last user message of a prompt, for display."""
    return as_messages(prompt)[-1]["content"]


def comparison_rows(prompts: list[Prompt], columns: dict[str, list[str]]) -> list[dict[str, str]]:
    """Rows of prompt | column 1 | column 2 ... (e.g. before/after), checked for equal lengths."""
    for name, values in columns.items():
        if len(values) != len(prompts):
            raise ValueError(f"column {name!r} has {len(values)} answers for {len(prompts)} prompts")
    return [
        {"prompt": prompt_text(p), **{name: values[i] for name, values in columns.items()}}
        for i, p in enumerate(prompts)
    ]


def show_comparison(prompts: list[Prompt], before: list[str], after: list[str]) -> list[dict[str, str]]:
    """Show the prompt | before | after table and return its rows."""
    rows = comparison_rows(prompts, {"before": before, "after": after})
    display.show_table(rows)
    return rows


def distinct_ngrams(tokens: list[str], n: int, empty: float = 1.0) -> float:
    """Distinct n-grams / all n-grams of `tokens` (`empty` under `n` tokens): a text that loops repeats its n-grams.
    The one measure behind the loop checks: word bigrams here (loop_check, corpora.word_loops) and code's token
    trigrams (corpora.loops, notebook 06)."""
    grams = list(zip(*(tokens[i:] for i in range(n))))
    return len(set(grams)) / len(grams) if grams else empty


def distinct_bigrams(text: str) -> float:
    """Distinct word bigrams / all word bigrams of `text` (split at whitespace); 0.0 under two words, since a run
    with no space such as "२१००११३३४१११..." loops too."""
    return distinct_ngrams(text.split(), 2, empty=0.0)


def loop_check(text: str, script: Any = None, min_share: float = 0.5, min_distinct: float = 0.5) -> dict[str, Any]:
    """Does a continuation stay in the script and avoid loops? `script_share`: share of its letters that match `script`
    (a compiled regex; DEVANAGARI by default); `distinct_bigrams`: distinct word bigrams / all word bigrams
    (a loop like "में में में" scores near 0). `passes` needs both at or above their thresholds."""
    script = script or DEVANAGARI
    letters = [c for c in text if c.isalpha() or "\u0900" <= c <= "\u097F"]
    share = sum(bool(script.match(c)) for c in letters) / len(letters) if letters else 0.0
    distinct = distinct_bigrams(text)
    return {
        "script_share": round(share, 3),
        "distinct_bigrams": round(distinct, 3),
        "passes": share >= min_share and distinct >= min_distinct,
    }


def decoding_speed(model: Any, tokenizer: Any, texts: list[str]) -> dict[str, float]:
    """Generation speed in characters per second, measured on given texts: each text is fed one token per forward pass
    with the key/value cache, the work generate() does for every new token, but on the text's own tokens. Two
    tokenizers are then timed on the same characters, whatever a model would have chosen to write (or when it stops)."""
    import torch

    was_training = model.training
    model.eval()
    chars = tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            past = None
            for token in ids:
                step = torch.tensor([[token]], device=model.device)
                past = model(input_ids=step, past_key_values=past, use_cache=True).past_key_values
            chars, tokens = chars + len(text), tokens + len(ids)
    seconds = time.perf_counter() - start
    model.train(was_training)
    return {
        "chars": chars, "tokens": tokens, "seconds": round(seconds, 2), "chars_per_second": round(chars / seconds, 2)
    }
