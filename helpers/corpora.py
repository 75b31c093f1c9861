"""Raw-text corpora for continued pre-training: Hindi text and a Hindi word list (05), Python functions (06)."""

from __future__ import annotations

import ast
import re
import sys
import sysconfig
import textwrap
import unicodedata
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

from helpers import DATA_DIR
from helpers.data import DataFormatError, check_text_fields, keep_valid, report_kept, skip_reason, text_file_lines
from helpers.generation import DEVANAGARI, distinct_bigrams, distinct_ngrams

LATIN = re.compile(r"[A-Za-z]")
SCRIPTS = ("hindi", "english", "any")
HINDI_HUB = ("wikimedia/wikipedia", "20231101.hi")
# parquet copy of CodeSearchNet's Python split (the original needs a loading script)
CODE_HUB_ID = "Nan-Do/code-search-net-python"


# A Hindi word as notebook 05 counts it: a run of Devanagari letters and signs (no danda, no Devanagari digits).
DEVANAGARI_WORD = re.compile(r"[\u0900-\u0963\u0971-\u097F]+")
WORD_LIST = DATA_DIR / "hindi_words.txt"  # wordfreq's Hindi list (tools/hindi_words.py), not this project's text


def normalise_hindi(word: str) -> str:
    """`word` in NFC without the nukta (U+093C), so that "बुख़ार" and "बुखार" are one word however they are typed."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", word).replace("\u093c", ""))


def hindi_words(text: str) -> list[str]:
    """The Devanagari words of `text`, normalised (Latin words, digits and punctuation are left out)."""
    return [normalise_hindi(w) for w in DEVANAGARI_WORD.findall(text)]


def load_word_list(path: str | Path = WORD_LIST) -> frozenset[str]:
    """The Hindi word list, one normalised word per line."""
    return frozenset(normalise_hindi(w) for w in text_file_lines(path) if w.strip())


def real_word_counts(texts: list[str], words: frozenset[str], long: int = 4) -> dict[str, Any]:
    """How much Hindi `texts` hold: Devanagari words per text (mean), the share of them in the word list `words`, and
    the same share among the longer words (`long` characters or more, vowel signs included). Gibberish in Devanagari
    letters scores a low share, an empty or one-word text few words; short function words (है, में, की) are real
    words in any jumble, so the longer words' share is the stricter reading.

    A loop of one real word ("में में में ...") is all real words, so two readings catch repetition: `distinct_share`,
    the words that are distinct within their own text (each text's distinct words, summed over the texts) / all
    words, and `loops`, how many texts repeat themselves (word_loops: under half of their word bigrams distinct)."""
    found = [hindi_words(t) for t in texts]
    every = [w for f in found for w in f]
    longer = [w for w in every if len(w) >= long]
    real = sum(w in words for w in every)
    real_long = sum(w in words for w in longer)
    distinct = sum(len(set(f)) for f in found)
    return {"texts": len(texts), "words_per_text": round(len(every) / max(len(texts), 1), 2),
            "real_share": round(real / len(every), 3) if every else 0.0, "words": len(every), "real_words": real,
            "long_real_share": round(real_long / len(longer), 3) if longer else 0.0, "long_words": len(longer),
            "distinct_share": round(distinct / len(every), 3) if every else 0.0, "distinct_words": distinct,
            "loops": sum(word_loops(t) for t in texts)}


def check_script(text: str, script: str, where: str) -> None:
    """Raise DataFormatError unless `text` is in the expected script: 'hindi' (Devanagari, no Latin letters),
    'english' (no Devanagari) or 'any'."""
    if script not in SCRIPTS:
        raise ValueError(f"script must be one of {SCRIPTS}")
    has_hindi, has_latin = bool(DEVANAGARI.search(text)), bool(LATIN.search(text))
    if script == "hindi" and (not has_hindi or has_latin):
        raise DataFormatError(
            f"{where}: expected Hindi in Devanagari only"
            + (" (found no Devanagari)" if not has_hindi else " (found Latin letters)")
        )
    if script == "english" and has_hindi:
        raise DataFormatError(f"{where}: expected English only, found Devanagari")


def load_text_lines(path: str | Path, script: str = "any") -> list[str]:
    """Non-empty lines of a UTF-8 text file (a leading byte-order mark and \\r\\n line ends are fine), each checked to
    be in the expected script (errors name the line)."""
    lines = []
    for number, line in enumerate(text_file_lines(path), start=1):
        if line.strip():
            check_script(line, script, f"{path}, line {number}")
            lines.append(line.strip())
    if not lines:
        raise DataFormatError(f"{path}: no text")
    return lines


def hindi_paragraphs(row: Any, where: str, min_chars: int = 200) -> list[str]:
    """The paragraphs (lines) of a Wikipedia article with at least `min_chars` characters and some Devanagari;
    DataFormatError when the article has none (shorter lines such as headings are dropped without a word)."""
    check_text_fields(row, where, required=("text",))
    if not DEVANAGARI.search(row["text"]):
        raise DataFormatError(f"{where}: no Devanagari")
    paragraphs = [p.strip() for p in row["text"].split("\n")]
    kept = [p for p in paragraphs if len(p) >= min_chars and DEVANAGARI.search(p)]
    if not kept:
        raise DataFormatError(f"{where}: no paragraph of {min_chars}+ characters with Devanagari")
    return kept


def load_hindi_hub(limit: int, min_chars: int = 200) -> list[str]:
    """`limit` Hindi Wikipedia paragraphs from the hub (needs network; streamed, so nothing large is downloaded).
    Articles without a usable paragraph are skipped and counted in the printed summary."""
    from datasets import load_dataset

    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    name, config = HINDI_HUB
    source = f"{name} ({config})"
    texts: list[str] = []
    articles, skipped = 0, Counter()
    for index, row in enumerate(load_dataset(name, config, split="train", streaming=True)):
        where = f"{source}, row {index}"
        try:
            texts += hindi_paragraphs(row, where, min_chars)
        except DataFormatError as err:
            skipped[skip_reason(err, where)] += 1
            continue
        articles += 1
        if len(texts) >= limit:
            break
    texts = texts[:limit]
    short = f" of {limit:,} asked for: the dataset ran out" if 0 < len(texts) < limit else ""
    report_kept(source, articles, skipped, "articles", f" ({len(texts):,} paragraphs{short})")
    return texts


# --- Python functions from the standard library ------------------------------------------------


def stdlib_dir() -> Path:
    """The folder of the running interpreter's standard library source."""
    return Path(sysconfig.get_paths()["stdlib"])


def is_heldout_module(module: str, percent: int = 10) -> bool:
    """A stable split by module name (crc32), so that no function of a held-out module is trained on."""
    return zlib.crc32(module.encode()) % 100 < percent


def functions_in_source(source: str, module: str, max_chars: int = 2000) -> list[dict[str, str]]:
    """Top-level and method functions that have a docstring: {module, name, code, prompt} with prompt = signature
    + docstring."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    lines = source.splitlines(keepends=True)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or ast.get_docstring(node) is None:
            continue
        doc = node.body[0]
        if len(node.body) < 2 or node.decorator_list:
            continue  # docstring-only stubs and decorated functions are skipped
        code = textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno]))
        prompt = textwrap.dedent("".join(lines[node.lineno - 1 : doc.end_lineno]))
        if len(code) <= max_chars and code.startswith(("def ", "async def ")):
            found.append({"module": module, "name": node.name, "code": code.rstrip() + "\n", "prompt": prompt})
    return found


def stdlib_functions(
    max_chars: int = 2000, heldout_percent: int = 10
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, heldout) functions with docstrings from the standard library, split by module; test suites excluded.
    A held-out function whose exact text is also in a training module (the standard library copies a few between
    modules) is dropped from the held-out side, and the count printed: it would be leakage."""
    root = stdlib_dir()
    train, heldout = [], []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if (
            relative.parts[0] in ("site-packages", "idlelib", "lib2to3", "turtledemo")
            or {"test", "tests"} & set(relative.parts)
        ):
            continue
        module = ".".join(relative.with_suffix("").parts)
        try:
            source = path.read_text(encoding="utf-8-sig")  # ast.parse refuses a byte-order mark
        except (UnicodeDecodeError, OSError):
            continue
        target = heldout if is_heldout_module(module, heldout_percent) else train
        target += functions_in_source(source, module, max_chars)
    if not train or not heldout:
        raise RuntimeError(f"found no standard library source under {root} (python {sys.version.split()[0]})")
    trained = {f["code"] for f in train}
    kept = [f for f in heldout if f["code"] not in trained]
    print("held-out functions dropped because their exact text is also in a training module:", len(heldout) - len(kept))
    return train, kept


def hub_function(row: Any, where: str, max_chars: int = 2000) -> str:
    """One CodeSearchNet row as training text: its `original_string`, kept only if functions_in_source would take it
    as one whole function (Python 3 syntax, a docstring and a body, at most `max_chars`); else DataFormatError."""
    check_text_fields(row, where, required=("original_string",))
    code = textwrap.dedent(row["original_string"]).strip("\n").rstrip() + "\n"
    if len(code) > max_chars:
        raise DataFormatError(f"{where}: longer than {max_chars:,} characters")
    if not parses(code):
        raise DataFormatError(f"{where}: not valid Python 3")
    found = functions_in_source(code, where, max_chars)
    # found[0] must be the row's own (outermost) function
    if not found or not code.startswith(found[0]["code"].rstrip()):
        raise DataFormatError(f"{where}: not one undecorated function with a docstring and a body")
    return code


def load_code_hub(limit: int, max_chars: int = 2000) -> list[str]:
    """`limit` Python functions from the CodeSearchNet copy on the hub (needs network; streamed).
    Rows hub_function rejects are skipped and counted in the printed summary."""
    from datasets import load_dataset

    rows = load_dataset(CODE_HUB_ID, split="train", streaming=True)
    return keep_valid(
        rows, lambda row, where: hub_function(row, where, max_chars), CODE_HUB_ID, limit, unit="functions"
    )


def cut_function(prompt: str, completion: str) -> str:
    """Keep the generated body of one function: stop where a new top-level statement starts."""
    kept = []
    for line in completion.splitlines(keepends=True):
        if line.strip() and not line[0].isspace():
            break
        kept.append(line)
    return prompt + "".join(kept)


def runs_past(completion: str) -> bool:
    """True when a raw completion of a function goes on past it: a non-blank line that starts at column 0 (a new
    `def`, "# Example usage", a Markdown fence, chat prose). A completion that ends inside the function, or stops, is
    False. cut_function drops what this finds."""
    return any(line.strip() and not line[0].isspace() for line in completion.splitlines())


# Code split into words, numbers and single symbols; "_" splits too, so "set_fd_set_set" is four tokens.
CODE_TOKEN = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d_]")


def distinct_trigrams(code: str) -> float:
    """Distinct token trigrams / all token trigrams of `code` (1.0 for text under three tokens). Working code repeats
    some (`self . x`); a completion that loops ("protocol, protocol, protocol", the same line again and again) scores
    low."""
    return distinct_ngrams(CODE_TOKEN.findall(code), 3)  # generation.distinct_ngrams


def loops(code: str, min_distinct: float = 0.5) -> bool:
    """True when `code` repeats itself: under `min_distinct` of its token trigrams are distinct. In notebook 06's runs
    of 2026-11-30 to 12-02 (the references and the spread runs), every function body that repeats a line or a name
    until the token budget ends scored 0.15-0.43, every other one 0.53 or more."""
    return distinct_trigrams(code) < min_distinct


def word_loops(text: str, min_distinct: float = 0.5) -> bool:
    """True when `text` repeats itself: under `min_distinct` of its word bigrams are distinct (generation.loop_check's
    `distinct_bigrams`; a text under two words counts), the prose counterpart of `loops` for code. "में में में" and
    "में पहले में पहले" loop, a sentence does not."""
    return distinct_bigrams(text) < min_distinct


def has_body(code: str) -> bool:
    """True when `code` parses and its first function has a statement beyond its docstring that does something
    (not `pass` or `...`). A completion that stops after the docstring still parses; it does not have a body."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    function = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if function is None:
        return False
    body = function.body[1:] if ast.get_docstring(function, clean=False) is not None else function.body
    placeholder = lambda s: isinstance(s, ast.Pass) or (  # noqa: E731
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and s.value.value is Ellipsis
    )
    return any(not placeholder(statement) for statement in body)


def parses(code: str) -> bool:
    """True when `code` is valid Python syntax."""
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def next_line_tasks(
    functions: list[dict[str, str]], per_function: int = 3, min_chars: int = 12
) -> list[dict[str, str]]:
    """Line-completion tasks (as in CodeXGLUE's line-level completion) from functions {code, prompt}: the code up to the
    end of one body line, without its newline, as `prompt`, and the next line (stripped) as `target`. Per function,
    up to `per_function` target lines spread over the body, skipping the first body line, blank lines, comments and
    lines under `min_chars` characters (such as `else:`), which are too easy to tell anything."""
    tasks = []
    for function in functions:
        code, header = function["code"], function["prompt"]
        if not code.startswith(header):
            continue
        lines = code.splitlines(keepends=True)
        starts = [sum(map(len, lines[:i])) for i in range(len(lines))]
        body = [i for i, line in enumerate(lines) if starts[i] >= len(header)]
        candidates = [
            i for i in body[1:] if len(lines[i].strip()) >= min_chars and not lines[i].lstrip().startswith("#")
        ]
        if not candidates:
            continue
        step = len(candidates) / min(per_function, len(candidates))
        for i in sorted({candidates[int(k * step)] for k in range(min(per_function, len(candidates)))}):
            tasks.append(
                {"name": function.get("name", ""), "prompt": code[: starts[i]].rstrip("\n"), "target": lines[i].strip()}
            )
    return tasks


def first_line(continuation: str) -> str:
    """The first non-blank line of a raw continuation, stripped (what a line-completion task compares)."""
    return next((line.strip() for line in continuation.splitlines() if line.strip()), "")
