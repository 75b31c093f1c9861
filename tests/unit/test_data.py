import json
import re

import pytest

from helpers import data


def write(tmp_path, lines, name="rows.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_alpaca_fills_missing_input(tmp_path):
    path = write(
        tmp_path,
        [
            json.dumps({"instruction": "Say hi.", "output": "Hi."}),
            "",
            json.dumps({"instruction": "Add.", "input": "2, 3", "output": "5"}),
        ],
    )
    rows = data.load_alpaca(path)
    assert rows == [
        {"instruction": "Say hi.", "input": "", "output": "Hi."},
        {"instruction": "Add.", "input": "2, 3", "output": "5"},
    ]


def test_broken_json_line_is_named(tmp_path):
    path = write(tmp_path, [json.dumps({"instruction": "a", "output": "b"}), '{"instruction": "x", "output": '])
    with pytest.raises(data.DataFormatError, match=r"rows.jsonl, line 2: malformed JSON"):
        data.load_alpaca(path)


def test_missing_output_is_named(tmp_path):
    path = write(tmp_path, [json.dumps({"instruction": "a", "output": "b"}), json.dumps({"instruction": "no answer"})])
    with pytest.raises(data.DataFormatError, match=r"line 2: field 'output' is missing"):
        data.load_alpaca(path)


def test_empty_instruction_is_named(tmp_path):
    path = write(tmp_path, [json.dumps({"instruction": "  ", "output": "b"})])
    with pytest.raises(data.DataFormatError, match=r"line 1: field 'instruction' is empty"):
        data.load_alpaca(path)


def test_wrong_types_are_named(tmp_path):
    path = write(tmp_path, [json.dumps({"instruction": "a", "input": 3, "output": "b"})])
    with pytest.raises(data.DataFormatError, match=r"field 'input' must be a string, got int"):
        data.load_alpaca(path)
    with pytest.raises(data.DataFormatError, match=r"expected a JSON object, got list"):
        data.load_alpaca(write(tmp_path, ["[1, 2]"], "list.jsonl"))


def test_non_utf8_is_named(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(
        json.dumps({"instruction": "a", "output": "b"}).encode()
        + b"\n"
        + '{"instruction": "café", "output": "x"}'.encode("latin-1")
    )
    with pytest.raises(data.DataFormatError, match=r"line 2: not valid UTF-8"):
        data.load_jsonl(path)


BOM = "\ufeff".encode()  # what Windows Notepad puts at the start of a file saved as UTF-8


def windows_file(tmp_path, lines, name="rows.jsonl"):
    """The lines saved as Notepad does: UTF-8 with a byte-order mark, \r\n line ends."""
    path = tmp_path / name
    path.write_bytes(BOM + ("\r\n".join(lines) + "\r\n").encode())
    return path


ALPACA_LINES = [
    json.dumps({"instruction": "Say hi.", "output": "Hi."}),
    "",
    json.dumps({"instruction": "Translate: namaste", "input": "नमस्ते", "output": "Hi,\r\nfriend."}, ensure_ascii=False),
]


def test_bom_and_crlf_load_the_same_rows_as_the_clean_file(tmp_path):
    clean = data.load_alpaca(write(tmp_path, ALPACA_LINES, "clean.jsonl"))
    assert data.load_alpaca(windows_file(tmp_path, ALPACA_LINES)) == clean
    assert clean[1]["output"] == "Hi,\r\nfriend."  # a \r\n inside a value is data, kept as written
    pairs = [json.dumps(ORCA), json.dumps({**ORCA, "question": "What is 3 + 3?", "chosen": "6."})]
    assert data.load_preferences(windows_file(tmp_path, pairs, "pairs.jsonl")) == data.load_preferences(
        write(tmp_path, pairs, "clean_pairs.jsonl")
    )
    numbered = data.numbered_jsonl(windows_file(tmp_path, ALPACA_LINES))
    assert [number for number, _ in numbered] == [1, 3]  # line numbers as an editor shows them


def test_unicode_line_separators_inside_json_strings_are_not_line_ends(tmp_path):
    # json.dumps(..., ensure_ascii=False) writes U+2028, U+2029 and NEL unescaped; str.splitlines would cut there
    row = {"instruction": "a\u2028b", "output": "c\u2029d\x85e"}
    path = write(tmp_path, [json.dumps(row, ensure_ascii=False), json.dumps({"instruction": "x", "output": "y"})])
    assert data.load_alpaca(path) == [{**row, "input": ""}, {"instruction": "x", "input": "", "output": "y"}]


@pytest.mark.parametrize(
    "second, message",
    [
        ('{"instruction": "x", "output": ', r"rows.jsonl, line 2: malformed JSON \(Expecting value at column 32\)"),
        (json.dumps({"instruction": "no answer"}), r"rows.jsonl, line 2: field 'output' is missing"),
        (json.dumps({"instruction": "x", "output": " "}), r"rows.jsonl, line 2: field 'output' is empty"),
        ("\ufeff" + json.dumps({"instruction": "x", "output": "y"}), r"rows.jsonl, line 2, column 1: a byte-order"),
    ],
)
def test_windows_file_with_a_broken_second_line_names_line_and_field(tmp_path, second, message):
    path = windows_file(tmp_path, [json.dumps({"instruction": "a", "output": "b"}), second])
    with pytest.raises(data.DataFormatError, match=message):
        data.load_alpaca(path)


def test_windows_file_with_a_broken_preference_names_line_and_field(tmp_path):
    path = windows_file(tmp_path, [json.dumps(ORCA), json.dumps({**ORCA, "rejected": ""})])
    with pytest.raises(data.DataFormatError, match=r"rows.jsonl, line 2: field 'rejected' is empty"):
        data.load_preferences(path)


def test_not_utf8_after_a_bom_names_line_and_byte(tmp_path):
    path = tmp_path / "rows.jsonl"
    first = json.dumps({"instruction": "a", "output": "b"}).encode() + b"\r\n"
    path.write_bytes(BOM + first + '{"instruction": "café", "output": "x"}'.encode("latin-1") + b"\r\n")
    offset = len(BOM + first) + len('{"instruction": "caf')  # counted in the file as saved, the BOM included
    message = rf"rows.jsonl, line 2: not valid UTF-8 \(byte {offset}: 0xe9\); save the file as UTF-8"
    with pytest.raises(data.DataFormatError, match=message):
        data.load_alpaca(path)


def test_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("\r\n".join(ALPACA_LINES) + "\r\n", encoding="utf-16")  # Notepad's "Unicode"
    message = r"rows.jsonl, line 1: not valid UTF-8 but UTF-16 \(it starts with its byte-order mark\); save it as UTF-8"
    with pytest.raises(data.DataFormatError, match=message):
        data.load_jsonl(path)


def test_empty_file_and_missing_file(tmp_path):
    with pytest.raises(data.DataFormatError, match="no rows"):
        data.load_jsonl(write(tmp_path, [""]))
    with pytest.raises(FileNotFoundError):
        data.load_jsonl(tmp_path / "nope.jsonl")


def test_data_format_error_is_a_value_error():
    assert issubclass(data.DataFormatError, ValueError)


def test_validate_alpaca_names_the_row():
    with pytest.raises(data.DataFormatError, match=r"hub, row 1: field 'output' is empty"):
        data.validate_alpaca([{"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""}], source="hub")


def test_alpaca_to_messages_and_prompt_completion():
    row = {"instruction": "Sort these.", "input": "b, a", "output": "a, b"}
    assert data.alpaca_to_messages(row) == [
        {"role": "user", "content": "Sort these.\n\nb, a"},
        {"role": "assistant", "content": "a, b"},
    ]
    pc = data.alpaca_to_prompt_completion({"instruction": "Hi", "input": "", "output": "Hello"})
    assert pc == {
        "prompt": [{"role": "user", "content": "Hi"}],
        "completion": [{"role": "assistant", "content": "Hello"}],
    }
    assert data.prompt_of(data.alpaca_to_messages(row)) == [{"role": "user", "content": "Sort these.\n\nb, a"}]
    with pytest.raises(data.DataFormatError):
        data.prompt_of([{"role": "user", "content": "x"}])


@pytest.mark.parametrize("name, minimum", [("alpaca_train.jsonl", 200), ("alpaca_heldout.jsonl", 30)])
def test_shipped_alpaca_files_are_valid(name, minimum):
    rows = data.load_alpaca(data.DATA_DIR / name)
    assert len(rows) >= minimum


def test_shipped_heldout_never_trained_on():
    train = {r["instruction"].strip().lower() for r in data.load_alpaca(data.DATA_DIR / "alpaca_train.jsonl")}
    heldout = {r["instruction"].strip().lower() for r in data.load_alpaca(data.DATA_DIR / "alpaca_heldout.jsonl")}
    assert not train & heldout


def test_shipped_facts_are_valid_and_never_asked_in_training():
    facts = data.load_facts(data.DATA_DIR / "facts_heldout.jsonl")
    assert len(facts) == 48 and len({f["question"] for f in facts}) == 48
    words = lambda text: " ".join(re.findall(r"[a-z0-9]+", text.lower()))  # noqa: E731
    rows = data.load_alpaca(data.DATA_DIR / "alpaca_train.jsonl")
    asked = {words(r["instruction"] + " " + r["input"]) for r in rows}
    assert not {words(f["question"]) for f in facts} & asked
    # the answers were checked by hand against the training rows: the names among them are never stated there, but
    # for these, which appear in other facts (Paris and London in a list of cities, Asia and Australia among the
    # continents, India's capital, the Sun and the Earth everywhere)
    elsewhere = {"Earth", "Sun", "Paris", "London", "Asia", "Australia", "India"}
    trained = " ".join(words(r["output"]) for r in rows)
    names = [a for f in facts for a in f["answers"] if a[0].isupper() and a not in elsewhere]
    assert names and not [a for a in names if f" {words(a)} " in f" {trained} "]


@pytest.mark.parametrize("row, message", [
    ({"question": "Q?"}, "'answers' must be a non-empty list"),
    ({"question": "Q?", "answers": []}, "'answers' must be a non-empty list"),
    ({"question": "Q?", "answers": ["A", " "]}, "non-empty strings"),
    ({"question": " ", "answers": ["A"]}, "field 'question' is empty"),
])
def test_bad_fact_rows_are_named(tmp_path, row, message):
    path = tmp_path / "facts.jsonl"
    path.write_text(json.dumps({"question": "Fine?", "answers": ["yes"]}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(data.DataFormatError, match=f"facts.jsonl, line 2: .*{re.escape(message)}"):
        data.load_facts(path)


ORCA = {"system": "Answer briefly.", "question": "What is 2 + 2?", "chosen": "4.", "rejected": "5."}


def test_orca_row_becomes_conversational_pair():
    assert data.validate_preferences([ORCA]) == [{
        "prompt": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is 2 + 2?"}],
        "chosen": [{"role": "assistant", "content": "4."}],
        "rejected": [{"role": "assistant", "content": "5."}],
    }]
    no_system = data.validate_preferences([{**ORCA, "system": ""}])[0]
    assert no_system["prompt"] == [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.mark.parametrize(
    "row, message",
    [
        ({**ORCA, "chosen": ""}, r"row 0: field 'chosen' is empty"),
        ({k: v for k, v in ORCA.items() if k != "rejected"}, r"row 0: field 'rejected' is missing"),
        ({**ORCA, "rejected": "4."}, r"row 0: fields 'chosen' and 'rejected' are identical"),
        ({**ORCA, "question": 3}, r"field 'question' must be a string"),
        (
            {
                "prompt": [{"role": "user", "content": "q"}],
                "chosen": [{"role": "bot", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            r"field 'chosen'\[0\]: role 'bot' is not one of",
        ),
        (
            {
                "prompt": [{"role": "assistant", "content": "q"}],
                "chosen": [{"role": "assistant", "content": "a"}],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            r"field 'prompt': the last message must have role 'user'",
        ),
        (
            {
                "prompt": [{"role": "user", "content": "q"}],
                "chosen": [],
                "rejected": [{"role": "assistant", "content": "b"}],
            },
            r"field 'chosen': expected a non-empty list",
        ),
    ],
)
def test_bad_preference_rows_are_named(row, message):
    with pytest.raises(data.DataFormatError, match=message):
        data.validate_preferences([row])


def test_preference_file_errors_name_the_line(tmp_path):
    path = write(tmp_path, [json.dumps(ORCA), json.dumps({**ORCA, "rejected": ORCA["chosen"]})])
    with pytest.raises(data.DataFormatError, match=r"rows.jsonl, line 2: fields 'chosen' and 'rejected' are identical"):
        data.load_preferences(path)


@pytest.mark.parametrize("name, minimum", [("dpo_train.jsonl", 150), ("dpo_heldout.jsonl", 30)])
def test_shipped_preference_files_are_valid(name, minimum):
    assert len(data.load_preferences(data.DATA_DIR / name)) >= minimum


def test_shipped_preference_heldout_never_trained_on():
    def questions(name):
        return {p["prompt"][-1]["content"].lower() for p in data.load_preferences(data.DATA_DIR / name)}

    assert not questions("dpo_train.jsonl") & questions("dpo_heldout.jsonl")


def test_heldout_preferences_are_labelled_and_worded_unlike_training():
    """03's held-out rejections share no 5-word sequence with any training rejection (beyond the answer itself, which
    also appears in the chosen side), so a model cannot win them by recognising memorised filler or dodges."""
    heldout = data.load_jsonl(data.DATA_DIR / "dpo_heldout.jsonl")
    train = data.load_jsonl(data.DATA_DIR / "dpo_train.jsonl")
    kinds = {row["kind"] for row in heldout}
    assert kinds == {"correct-vs-wrong", "concise-vs-padded", "helpful-vs-evasive", "format"}

    def grams(text: str, n: int = 5) -> set[str]:
        words = text.lower().replace('"', " ").split()
        return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}

    seen = set().union(*(grams(row["rejected"]) for row in train))
    for row in heldout:
        assert not (grams(row["rejected"]) & seen) - grams(row["chosen"]), row["question"]
    pairs = data.load_preferences(data.DATA_DIR / "dpo_heldout.jsonl")
    assert [pair["kind"] for pair in pairs] == [row["kind"] for row in heldout]  # the label survives loading
