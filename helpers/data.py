"""Read, validate and format the datasets: Alpaca instructions (more formats join as notebooks need them)."""

from __future__ import annotations

import codecs
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from helpers import DATA_DIR  # noqa: F401  (re-exported: data.DATA_DIR)

ALPACA_HUB_ID = "yahma/alpaca-cleaned"


class DataFormatError(ValueError):
    """Input data is not in the expected format; the message says where (file, line or row) and which field."""


# --- Lenient reading of hub data -----------------------------------------------------------------
# Shipped files are strict: the first bad line raises DataFormatError. Hub datasets are large and not ours to fix,
# so their loaders skip the rows the same strict validators reject, count them by reason and say so in one line.

T = TypeVar("T")


def skip_reason(err: DataFormatError, where: str) -> str:
    """A validator's message without its leading `where: `, e.g. "field 'output' is empty"."""
    message = str(err)
    return message[len(where) + 2 :] if message.startswith(f"{where}: ") else message


def report_kept(source: str, kept: int, skipped: Counter[str], unit: str = "rows", note: str = "") -> None:
    """Print how many rows a lenient loader kept and skipped (by reason); raise DataFormatError when it kept none."""
    total = sum(skipped.values())
    reasons = ", ".join(f"{reason}: {count:,}" for reason, count in skipped.most_common())
    if not kept:
        what = f"all {total:,} {unit} read were bad ({reasons})" if total else "the dataset gave nothing"
        raise DataFormatError(f"{source}: no usable {unit}: {what}")
    print(f"{source}: kept {kept:,} {unit}{note}, skipped {total:,}" + (f" ({reasons})" if total else ""))


def keep_valid(
    rows: Iterable[Any], validate: Callable[[Any, str], T], source: str, limit: int | None = None, unit: str = "rows"
) -> list[T]:
    """validate(row, where) each row; skip (and count by reason) the rows it rejects with DataFormatError; stop after
    `limit` kept rows; print one summary line. Raises DataFormatError when no row is kept."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    kept: list[T] = []
    skipped: Counter[str] = Counter()
    for index, row in enumerate(rows):
        where = f"{source}, row {index}"
        try:
            kept.append(validate(row, where))
        except DataFormatError as err:
            skipped[skip_reason(err, where)] += 1
            continue
        if limit is not None and len(kept) >= limit:
            break
    short = f" (of {limit:,} asked for: the dataset ran out)" if limit is not None and 0 < len(kept) < limit else ""
    report_kept(source, len(kept), skipped, unit, short)
    return kept


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON Lines file (one JSON object per line; blank lines are skipped)."""
    return [row for _, row in numbered_jsonl(path)]


# Lines end at \n, \r\n or \r only: not at U+2028, U+2029 or NEL (U+0085), which JSON strings may hold unescaped
# (json.dumps(..., ensure_ascii=False) writes them as they are) and str.splitlines would cut at.
LINE_END = re.compile(r"\r\n|\r|\n")
BYTE_LINE_END = re.compile(rb"\r\n|\r|\n")


def text_file_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file without their line ends (\\n, \\r\\n or \\r); a byte-order mark at its start is
    dropped (Windows Notepad writes one). DataFormatError naming the file and line when it is not UTF-8 or has a
    byte-order mark anywhere else (files joined together)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataFormatError(not_utf8_message(path, raw, err)) from err
    lines = LINE_END.split(text)
    if lines[-1] == "":
        lines.pop()  # the last line's end
    for number, line in enumerate(lines, start=1):
        if "\ufeff" in line:
            raise DataFormatError(
                f"{path}, line {number}, column {line.index(chr(0xFEFF)) + 1}: a byte-order mark (U+FEFF) inside the "
                "file; only its very start may have one: delete it (were two files joined together?)"
            )
    return lines


def not_utf8_message(path: Path, raw: bytes, err: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8 (line and byte offset) and what to do about it."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return f"{path}, line 1: not valid UTF-8 but UTF-16 (it starts with its byte-order mark); save it as UTF-8"
    offset = err.start + len(raw) - len(err.object)  # err.start counts from after a skipped UTF-8 byte-order mark
    line = len(BYTE_LINE_END.split(raw[:offset]))
    return f"{path}, line {line}: not valid UTF-8 (byte {offset}: 0x{raw[offset]:02x}); save the file as UTF-8"


def numbered_jsonl(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Read a JSON Lines file as (line number, object) pairs, so that later checks can name the line."""
    path = Path(path)
    rows = []
    for number, line in enumerate(text_file_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{path}, line {number}: malformed JSON ({err.msg} at column {err.colno})") from err
        if not isinstance(row, dict):
            raise DataFormatError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    return rows


def check_text_fields(row: Any, where: str, required: Iterable[str], optional: Iterable[str] = ()) -> None:
    """Raise DataFormatError unless `row` is a dict whose required fields are non-empty strings and optional ones
    strings."""
    if not isinstance(row, dict):
        raise DataFormatError(f"{where}: expected an object with fields {list(required)}, got {type(row).__name__}")
    for name in required:
        if name not in row or row[name] is None:
            raise DataFormatError(f"{where}: field {name!r} is missing")
        if not isinstance(row[name], str):
            raise DataFormatError(f"{where}: field {name!r} must be a string, got {type(row[name]).__name__}")
        if not row[name].strip():
            raise DataFormatError(f"{where}: field {name!r} is empty")
    for name in optional:
        if row.get(name) is not None and not isinstance(row[name], str):
            raise DataFormatError(f"{where}: field {name!r} must be a string, got {type(row[name]).__name__}")


def clean_alpaca_row(row: Any, where: str) -> dict[str, str]:
    """Check one Alpaca row (instruction and output required, input optional); return it with input filled in."""
    check_text_fields(row, where, required=("instruction", "output"), optional=("input",))
    return {"instruction": row["instruction"], "input": row.get("input") or "", "output": row["output"]}


def validate_alpaca(rows: Iterable[Any], source: str = "data") -> list[dict[str, str]]:
    """Check Alpaca rows; errors name the row index and the field."""
    clean = [clean_alpaca_row(row, f"{source}, row {index}") for index, row in enumerate(rows)]
    if not clean:
        raise DataFormatError(f"{source}: no rows")
    return clean


def load_alpaca(path: str | Path) -> list[dict[str, str]]:
    """Load and validate an Alpaca-format JSON Lines file; errors name the line and the field."""
    return [clean_alpaca_row(row, f"{path}, line {number}") for number, row in numbered_jsonl(path)]


def load_alpaca_hub(
    split: str = "train", limit: int | None = None, dataset_id: str = ALPACA_HUB_ID
) -> list[dict[str, str]]:
    """The first `limit` valid Alpaca rows from the Hugging Face hub (needs network; used on Colab).
    Rows validate_alpaca would reject are skipped and counted in the printed summary."""
    from datasets import load_dataset

    return keep_valid(load_dataset(dataset_id, split=split), clean_alpaca_row, dataset_id, limit)


def clean_fact_row(row: Any, where: str) -> dict[str, Any]:
    """Check one fact question: a non-empty `question` and a non-empty list `answers` of accepted answers."""
    check_text_fields(row, where, required=("question",))
    answers = row.get("answers")
    if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a.strip() for a in answers):
        raise DataFormatError(f"{where}: field 'answers' must be a non-empty list of non-empty strings")
    return {"question": row["question"].strip(), "answers": [a.strip() for a in answers]}


def load_facts(path: str | Path) -> list[dict[str, Any]]:
    """Load fact questions with their accepted answers (JSON Lines); errors name the line and the field."""
    return [clean_fact_row(row, f"{path}, line {number}") for number, row in numbered_jsonl(path)]


def alpaca_to_messages(row: dict[str, str]) -> list[dict[str, str]]:
    """One Alpaca row as a chat: the user turn is the instruction (plus input), the assistant turn the output."""
    user = row["instruction"].strip()
    if row.get("input", "").strip():
        user += "\n\n" + row["input"].strip()
    return [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"].strip()}]


def alpaca_to_prompt_completion(row: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """TRL's conversational prompt-completion format: the loss is then computed on the completion only."""
    messages = alpaca_to_messages(row)
    return {"prompt": messages[:-1], "completion": messages[-1:]}


def prompt_of(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The messages up to (not including) the final assistant turn: what the model sees when asked."""
    if not messages or messages[-1]["role"] != "assistant":
        raise DataFormatError("a chat example must end with an assistant turn")
    return messages[:-1]


# --- Preference pairs (notebook 03) -------------------------------------------------------------

ORCA_DPO_HUB_ID = "Intel/orca_dpo_pairs"
ROLES = ("system", "user", "assistant")


def check_messages(messages: Any, where: str, last_role: str | None = None) -> None:
    """Raise DataFormatError unless `messages` is a non-empty list of {role, content} with known roles."""
    if not isinstance(messages, list) or not messages:
        raise DataFormatError(f"{where}: expected a non-empty list of messages")
    for i, message in enumerate(messages):
        check_text_fields(message, f"{where}[{i}]", required=("role", "content"))
        if message["role"] not in ROLES:
            raise DataFormatError(f"{where}[{i}]: role {message['role']!r} is not one of {ROLES}")
    if last_role and messages[-1]["role"] != last_role:
        raise DataFormatError(f"{where}: the last message must have role {last_role!r}, not {messages[-1]['role']!r}")


def preference_row(row: Any, where: str) -> dict[str, list[dict[str, str]]]:
    """One pair in TRL's conversational preference format, from an orca row (system, question, chosen, rejected)
    or an already-converted row (prompt, chosen, rejected as message lists); validated."""
    if isinstance(row, dict) and isinstance(row.get("prompt"), list):
        check_messages(row["prompt"], f"{where}: field 'prompt'", last_role="user")
        for name in ("chosen", "rejected"):
            check_messages(row.get(name), f"{where}: field {name!r}", last_role="assistant")
        pair = {"prompt": row["prompt"], "chosen": row["chosen"], "rejected": row["rejected"]}
    else:
        check_text_fields(row, where, required=("question", "chosen", "rejected"), optional=("system", "kind"))
        prompt = [{"role": "system", "content": row["system"].strip()}] if (row.get("system") or "").strip() else []
        prompt.append({"role": "user", "content": row["question"].strip()})
        pair = {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": row["chosen"].strip()}],
            "rejected": [{"role": "assistant", "content": row["rejected"].strip()}],
        }
    if pair["chosen"] == pair["rejected"]:
        raise DataFormatError(
            f"{where}: fields 'chosen' and 'rejected' are identical, so there is no preference to learn"
        )
    if isinstance(row, dict) and row.get("kind"):  # what the pair tests (the shipped held-out set labels each pair)
        pair["kind"] = row["kind"]
    return pair


def validate_preferences(rows: Iterable[Any], source: str = "data") -> list[dict[str, list[dict[str, str]]]]:
    """Check preference rows; errors name the row index and the field."""
    pairs = [preference_row(row, f"{source}, row {i}") for i, row in enumerate(rows)]
    if not pairs:
        raise DataFormatError(f"{source}: no rows")
    return pairs


def load_preferences(path: str | Path) -> list[dict[str, list[dict[str, str]]]]:
    """Load orca-format preference pairs from JSON Lines; errors name the line and the field."""
    return [preference_row(row, f"{path}, line {number}") for number, row in numbered_jsonl(path)]


def load_preferences_hub(
    limit: int | None = None, dataset_id: str = ORCA_DPO_HUB_ID
) -> list[dict[str, list[dict[str, str]]]]:
    """The first `limit` valid pairs of orca_dpo_pairs from the hub (needs network; used on Colab).
    Rows validate_preferences would reject are skipped and counted in the printed summary."""
    from datasets import load_dataset

    return keep_valid(load_dataset(dataset_id, split="train"), preference_row, dataset_id, limit, unit="pairs")
