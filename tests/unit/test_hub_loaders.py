"""The hub loaders (used on Colab) against a fake `datasets.load_dataset`, and the hub tokenizer's extra PAD token.

The fake returns real `datasets.Dataset` / `IterableDataset` objects whose rows have the real datasets' fields:
  yahma/alpaca-cleaned          instruction, input, output
  Intel/orca_dpo_pairs          system, question, chosen, rejected
  wikimedia/wikipedia 20231101.hi   id, url, title, text (a whole article; paragraphs and headings on their own lines)
  Nan-Do/code-search-net-python repo, path, func_name, original_string, language, code, code_tokens, docstring,
                                docstring_tokens, sha, url, partition, summary
and checks the arguments the loader passes, so that a wrong dataset id, config, split or streaming flag fails.
"""

from __future__ import annotations

import datasets
import pytest

from helpers import corpora, data, models
from helpers.data import DataFormatError


def fake_hub(monkeypatch, rows, path, name=None, split="train", streaming=False):
    """Make datasets.load_dataset serve `rows` for exactly these arguments only. Returns the list of the streamed
    rows' ids (`id`, else `func_name`) read so far, to check that a streaming loader stops early."""
    expected = (path, name, split, streaming)
    read = []

    def stream():
        for row in rows:
            read.append(row.get("id") or row.get("func_name"))
            yield row

    def load_dataset(path, name=None, *args, split=None, streaming=False, **kwargs):
        assert (path, name, split, streaming) == expected, "load_dataset(path, name, split=, streaming=) called wrongly"
        assert not args and not kwargs, f"unexpected arguments {args} {kwargs}"
        return datasets.IterableDataset.from_generator(stream) if streaming else datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return read


# --- yahma/alpaca-cleaned ------------------------------------------------------------------------

ALPACA_ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "",
     "output": "1. Eat a balanced diet.\n2. Exercise regularly.\n3. Get enough sleep."},
    {"instruction": "Summarize the text below.", "input": "The meeting moved to Friday.", "output": ""},
    {"instruction": "Translate the sentence into French.", "input": "Good morning.", "output": "Bonjour."},
    {"instruction": "", "input": "2, 3", "output": "5"},
    {"instruction": "Name the capital of Japan.", "input": "", "output": "Tokyo."},
    {"instruction": "What is 2 + 2?", "input": "", "output": "4"},
]


def test_alpaca_hub_skips_bad_rows_and_says_why(monkeypatch, capsys):
    fake_hub(monkeypatch, ALPACA_ROWS, "yahma/alpaca-cleaned")
    rows = data.load_alpaca_hub(limit=3)
    assert rows == [ALPACA_ROWS[0], ALPACA_ROWS[2], ALPACA_ROWS[4]]
    assert capsys.readouterr().out == (
        "yahma/alpaca-cleaned: kept 3 rows, skipped 2 (field 'output' is empty: 1, field 'instruction' is empty: 1)\n"
    )
    with pytest.raises(DataFormatError, match=r"row 1: field 'output' is empty"):
        data.validate_alpaca(ALPACA_ROWS)  # the strict validator (shipped files) still refuses the same rows


def test_alpaca_hub_without_limit_reads_everything(monkeypatch, capsys):
    fake_hub(monkeypatch, ALPACA_ROWS, "yahma/alpaca-cleaned", split="validation")
    assert len(data.load_alpaca_hub(split="validation")) == 4
    assert capsys.readouterr().out.startswith("yahma/alpaca-cleaned: kept 4 rows, skipped 2 (")


def test_alpaca_hub_says_when_the_dataset_ran_out(monkeypatch, capsys):
    fake_hub(monkeypatch, ALPACA_ROWS[:2], "yahma/alpaca-cleaned")
    assert data.load_alpaca_hub(limit=5) == [ALPACA_ROWS[0]]
    assert capsys.readouterr().out == (
        "yahma/alpaca-cleaned: kept 1 rows (of 5 asked for: the dataset ran out), skipped 1 "
        "(field 'output' is empty: 1)\n"
    )


def test_the_fake_hub_catches_a_wrong_dataset_id(monkeypatch):
    fake_hub(monkeypatch, ALPACA_ROWS, "yahma/alpaca-cleaned")
    with pytest.raises(AssertionError):
        data.load_alpaca_hub(limit=3, dataset_id="yahma/alpaca-clean")


# --- Intel/orca_dpo_pairs ------------------------------------------------------------------------

ORCA_ROWS = [
    {"system": "You are an AI assistant. Answer briefly.", "question": "What is the capital of France?",
     "chosen": "The capital of France is Paris.", "rejected": "France's capital is Lyon."},
    {"system": "", "question": "Is the sky blue? Options: yes, no.", "chosen": "yes", "rejected": "yes"},
    {"system": "", "question": "Write a haiku about rain.", "chosen": "",
     "rejected": "Rain falls on the roof."},
    {"system": "", "question": "Add 17 and 25.", "chosen": " 17 + 25 = 42. ", "rejected": "17 + 25 = 32."},
]


def test_preferences_hub_skips_bad_pairs_and_says_why(monkeypatch, capsys):
    fake_hub(monkeypatch, ORCA_ROWS, "Intel/orca_dpo_pairs")
    pairs = data.load_preferences_hub(limit=10)
    assert pairs == [
        {
            "prompt": [{"role": "system", "content": "You are an AI assistant. Answer briefly."},
                       {"role": "user", "content": "What is the capital of France?"}],
            "chosen": [{"role": "assistant", "content": "The capital of France is Paris."}],
            "rejected": [{"role": "assistant", "content": "France's capital is Lyon."}],
        },
        {
            "prompt": [{"role": "user", "content": "Add 17 and 25."}],
            "chosen": [{"role": "assistant", "content": "17 + 25 = 42."}],
            "rejected": [{"role": "assistant", "content": "17 + 25 = 32."}],
        },
    ]
    assert capsys.readouterr().out == (
        "Intel/orca_dpo_pairs: kept 2 pairs (of 10 asked for: the dataset ran out), skipped 2 "
        "(fields 'chosen' and 'rejected' are identical, so there is no preference to learn: 1, "
        "field 'chosen' is empty: 1)\n"
    )


def test_preferences_hub_limit_counts_kept_pairs(monkeypatch, capsys):
    fake_hub(monkeypatch, ORCA_ROWS, "Intel/orca_dpo_pairs")
    pairs = data.load_preferences_hub(limit=2)
    assert [p["prompt"][-1]["content"] for p in pairs] == ["What is the capital of France?", "Add 17 and 25."]
    assert capsys.readouterr().out.startswith("Intel/orca_dpo_pairs: kept 2 pairs, skipped 2 (")


# --- wikimedia/wikipedia 20231101.hi (streamed) --------------------------------------------------

INDIA = "भारत दक्षिण एशिया में स्थित एक विशाल देश है और जनसंख्या की दृष्टि से यह विश्व का सबसे बड़ा देश है। " * 3
INDIA_2 = "भारत की राजधानी नई दिल्ली (New Delhi) है, जबकि मुंबई देश का सबसे बड़ा व्यापारिक नगर माना जाता है। " * 3
GANGA = "गंगा भारत की सबसे पवित्र और लम्बी नदियों में से एक है, जो हिमालय के गंगोत्री हिमनद से निकलती है। " * 3
GANGA_2 = "गंगा नदी के किनारे वाराणसी, प्रयागराज और पटना जैसे अनेक प्राचीन और प्रसिद्ध नगर बसे हुए हैं। " * 3
ENGLISH_QUOTE = (
    "The Ganges is the most sacred river to Hindus and a lifeline to millions of people who live along it. " * 3
)


def wiki(id_: str, title: str, text: str) -> dict[str, str]:
    return {"id": id_, "url": f"https://hi.wikipedia.org/wiki?curid={id_}", "title": title, "text": text}


WIKI_ROWS = [
    wiki("10", "भारत", f"{INDIA.strip()}\n\nइतिहास\n{INDIA_2.strip()}\n\nसन्दर्भ\n"),
    wiki("11", "खाली लेख", ""),
    wiki("12", "Python", "Python is a programming language.\n\nSee also\nPerl"),
    wiki("13", "रामपुर", "रामपुर उत्तर प्रदेश का एक गाँव है।\n\nसन्दर्भ"),
    wiki("14", "गंगा", f"{GANGA.strip()}\n\n{ENGLISH_QUOTE.strip()}\n\nभूगोल\n{GANGA_2.strip()}"),
    wiki("15", "हिमालय", INDIA),
]


def test_hindi_hub_keeps_long_devanagari_paragraphs(monkeypatch, capsys):
    read = fake_hub(monkeypatch, WIKI_ROWS, "wikimedia/wikipedia", "20231101.hi", streaming=True)
    texts = corpora.load_hindi_hub(3)
    # headings, short lines and the English quote dropped
    assert texts == [INDIA.strip(), INDIA_2.strip(), GANGA.strip()]
    assert read == ["10", "11", "12", "13", "14"]  # stops once it has 3 paragraphs: article 15 is never downloaded
    assert capsys.readouterr().out == (
        "wikimedia/wikipedia (20231101.hi): kept 2 articles (3 paragraphs), skipped 3 "
        "(field 'text' is empty: 1, no Devanagari: 1, no paragraph of 200+ characters with Devanagari: 1)\n"
    )


def test_hindi_hub_min_chars(monkeypatch, capsys):
    fake_hub(monkeypatch, WIKI_ROWS[3:4], "wikimedia/wikipedia", "20231101.hi", streaming=True)
    assert corpora.load_hindi_hub(5, min_chars=10) == ["रामपुर उत्तर प्रदेश का एक गाँव है।"]
    assert capsys.readouterr().out == (
        "wikimedia/wikipedia (20231101.hi): kept 1 articles (1 paragraphs of 5 asked for: the dataset ran out), "
        "skipped 0\n"
    )


# --- Nan-Do/code-search-net-python (streamed) ----------------------------------------------------


def csn(func_name: str, original_string: str, docstring: str) -> dict:
    """A row shaped like Nan-Do/code-search-net-python (CodeSearchNet's fields plus `summary`)."""
    return {
        "repo": "example/project",
        "path": "project/util.py",
        "func_name": func_name,
        "original_string": original_string,
        "language": "python",
        "code": original_string,
        "code_tokens": original_string.split(),
        "docstring": docstring,
        "docstring_tokens": docstring.split(),
        "sha": "c96b010c02f15e8eeb0f71308c641179ac1f19bb",
        "url": "https://github.com/example/project/blob/c96b010/project/util.py"
        f"#L1-L{original_string.count(chr(10)) + 1}",
        "partition": "train",
        "summary": docstring.split(".")[0],
    }


GOOD = (
    'def _rect_to_css(rect):\n    """Convert a dlib rect to a (top, right, bottom, left) tuple."""\n'
    "    return rect.top(), rect.right(), rect.bottom(), rect.left()"
)
# body keeps its class indentation
METHOD = 'def area(self):\n        """Area of the rectangle."""\n        return self.width * self.height'
PY2 = 'def log(message):\n    """Print a message."""\n    print "log:", message'
NO_DOC = "def add(a, b):\n    return a + b"
LONG = (
    'def table():\n    """A long table."""\n'
    + "".join(f"    row_{i} = {i} * {i}\n" for i in range(150))
    + "    return locals()"
)
DOC_ONLY = 'def todo():\n    """Not written yet."""'

CODE_ROWS = [
    csn("_rect_to_css", GOOD, "Convert a dlib rect to a (top, right, bottom, left) tuple."),
    csn("log", PY2, "Print a message."),
    csn("add", NO_DOC, ""),
    csn("table", LONG, "A long table."),
    csn("todo", DOC_ONLY, "Not written yet."),
    csn("Rectangle.area", METHOD, "Area of the rectangle."),
    csn("Other.thing", GOOD.replace("_rect_to_css", "thing"), "Never read."),
]


def test_code_hub_keeps_documented_python3_functions(monkeypatch, capsys):
    read = fake_hub(monkeypatch, CODE_ROWS, "Nan-Do/code-search-net-python", streaming=True)
    texts = corpora.load_code_hub(2)
    assert texts == [GOOD + "\n", METHOD + "\n"]
    assert all(corpora.parses(t) for t in texts)
    assert read == ["_rect_to_css", "log", "add", "table", "todo", "Rectangle.area"]  # stops at 2 kept
    assert len(LONG) > 2000
    assert capsys.readouterr().out == (
        "Nan-Do/code-search-net-python: kept 2 functions, skipped 4 (not one undecorated function with a docstring "
        "and a body: 2, not valid Python 3: 1, longer than 2,000 characters: 1)\n"
    )


# --- Nothing usable: a clear error ---------------------------------------------------------------


def test_all_bad_hub_rows_raise(monkeypatch):
    fake_hub(monkeypatch, [ALPACA_ROWS[1], ALPACA_ROWS[3]], "yahma/alpaca-cleaned")
    with pytest.raises(DataFormatError, match=(
        r"^yahma/alpaca-cleaned: no usable rows: all 2 rows read were bad "
        r"\(field 'output' is empty: 1, field 'instruction' is empty: 1\)$"
    )):
        data.load_alpaca_hub(limit=10)
    fake_hub(monkeypatch, WIKI_ROWS[1:4], "wikimedia/wikipedia", "20231101.hi", streaming=True)
    with pytest.raises(
        DataFormatError, match=r"^wikimedia/wikipedia \(20231101.hi\): no usable articles: all 3 articles"
    ):
        corpora.load_hindi_hub(10)
    fake_hub(monkeypatch, CODE_ROWS[1:3], "Nan-Do/code-search-net-python", streaming=True)
    with pytest.raises(
        DataFormatError, match=r"no usable functions: all 2 functions read were bad \(not valid Python 3: 1, "
    ):
        corpora.load_code_hub(10)


def test_an_empty_hub_dataset_raises(monkeypatch):
    fake_hub(monkeypatch, [], "Nan-Do/code-search-net-python", streaming=True)
    with pytest.raises(
        DataFormatError, match=r"^Nan-Do/code-search-net-python: no usable functions: the dataset gave nothing$"
    ):
        corpora.load_code_hub(10)
    fake_hub(monkeypatch, [], "Intel/orca_dpo_pairs")
    with pytest.raises(DataFormatError, match=r"^Intel/orca_dpo_pairs: no usable pairs: the dataset gave nothing$"):
        data.load_preferences_hub()


def test_limit_must_be_positive(monkeypatch):
    fake_hub(monkeypatch, ALPACA_ROWS, "yahma/alpaca-cleaned")
    with pytest.raises(ValueError, match="limit must be at least 1"):
        data.load_alpaca_hub(limit=0)
    with pytest.raises(ValueError, match="limit must be at least 1"):
        corpora.load_hindi_hub(0)


# --- The hub tokenizer's <|PAD_TOKEN|> -----------------------------------------------------------
# Unsloth's uploads often add a <|PAD_TOKEN|> (as the pad token, after the last id); whether today's
# unsloth/SmolLM2-135M-Instruct does could not be checked from here (no hub access, no stored copy of its files). If it
# does, its tokenizer has 49,153 tokens; the offline copy (converted from the GGUF) has SmolLM2's 49,152. The tests
# below build that hub-like tokenizer and check that the helpers work with both: set_hub_special_tokens makes both pad
# with <|im_end|> (id 2), an id every copy of the model can embed, and 05's vocabulary extension appends after it.


@pytest.fixture(scope="module")
def two_tokenizers():
    """(offline tokenizer, the same with Unsloth's <|PAD_TOKEN|> added as its pad token, as on the hub)."""
    from transformers import AutoTokenizer

    path = models.offline_model_dir()
    offline = AutoTokenizer.from_pretrained(path)
    hub = AutoTokenizer.from_pretrained(path)
    hub.add_special_tokens({"pad_token": "<|PAD_TOKEN|>"})
    return offline, hub


def test_hub_tokenizer_has_one_token_more(two_tokenizers):
    offline, hub = two_tokenizers
    assert len(offline) == 49_152 and "<|PAD_TOKEN|>" not in offline.get_vocab()
    assert len(hub) == 49_153 and hub.get_vocab()["<|PAD_TOKEN|>"] == 49_152
    assert hub.pad_token == "<|PAD_TOKEN|>" and hub.pad_token_id == 49_152
    assert len(hub) - len(offline) == 1


def test_set_hub_special_tokens_gives_a_valid_pad_id_with_and_without_pad_token(two_tokenizers):
    import copy
    import json

    embedding_rows = json.loads((models.offline_model_dir() / "config.json").read_text())["vocab_size"]
    assert embedding_rows == 49_152
    for tokenizer in map(copy.deepcopy, two_tokenizers):
        size = len(tokenizer)
        models.set_hub_special_tokens(tokenizer)
        assert len(tokenizer) == size  # nothing added or removed
        assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == (
            "<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>",
        )
        assert tokenizer.pad_token_id == tokenizer.eos_token_id == 2
        assert 0 <= tokenizer.pad_token_id < min(size, embedding_rows)
        batch = tokenizer(["Hi", "Hello there, world"], padding=True)["input_ids"]
        assert batch[0][-1] == 2 and len(batch[0]) == len(batch[1])
    offline, hub = map(copy.deepcopy, two_tokenizers)
    models.set_hub_special_tokens(hub)
    assert hub.convert_tokens_to_ids("<|PAD_TOKEN|>") == 49_152  # still in the vocabulary, just not the pad token
    assert (
        hub("The capital of France is")["input_ids"]
        == offline("The capital of France is")["input_ids"]
        == [504, 3575, 282, 4649, 314]
    )


def test_vocabulary_extension_appends_after_the_extra_pad_token(two_tokenizers):
    import copy

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from helpers import vocab

    texts = ["नमस्ते दुनिया, यह एक परीक्षण है। " * 3, "भारत की राजधानी नई दिल्ली है। " * 3]
    for tokenizer in map(copy.deepcopy, two_tokenizers):
        models.set_hub_special_tokens(tokenizer)
        merges = vocab.learn_merges(tokenizer, texts, 5)
        extended = vocab.extend_tokenizer(tokenizer, merges)
        assert len(extended) == len(tokenizer) + len(merges)
        tiny = LlamaForCausalLM(LlamaConfig(vocab_size=49_152, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
                                            num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=True))
        new_ids = vocab.init_new_embeddings(tiny, tokenizer, extended)
        assert new_ids == list(range(len(tokenizer), len(extended)))  # 49,152.. offline, 49,153.. with <|PAD_TOKEN|>
        assert tiny.get_input_embeddings().weight.shape[0] == len(extended)
        assert torch.isfinite(tiny.get_input_embeddings().weight).all()
