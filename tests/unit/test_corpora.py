import pytest

from helpers import corpora
from helpers.data import DataFormatError


def test_check_script():
    corpora.check_script("नमस्ते। (Hello.)", "bilingual", "x")
    corpora.check_script("नमस्ते।", "hindi", "x")
    corpora.check_script("Hello.", "english", "x")
    with pytest.raises(DataFormatError, match="x: expected Hindi in Devanagari only \\(found Latin letters\\)"):
        corpora.check_script("नमस्ते (Hello)", "hindi", "x")
    with pytest.raises(DataFormatError, match="found no Devanagari"):
        corpora.check_script("Namaste", "hindi", "x")
    with pytest.raises(DataFormatError, match="expected English only"):
        corpora.check_script("Hello नमस्ते", "english", "x")
    with pytest.raises(DataFormatError, match="English translation in parentheses"):
        corpora.check_script("नमस्ते।", "bilingual", "x")
    with pytest.raises(ValueError):
        corpora.check_script("x", "klingon", "x")


def test_load_text_lines_names_the_line(tmp_path):
    path = tmp_path / "hi.txt"
    path.write_text("नमस्ते।\n\nआप कैसे हैं?\nHello\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"hi.txt, line 4: expected Hindi"):
        corpora.load_text_lines(path, "hindi")
    assert corpora.load_text_lines(path, "any") == ["नमस्ते।", "आप कैसे हैं?", "Hello"]
    bad = tmp_path / "bad.txt"
    bad.write_bytes("ठीक\n".encode() + b"\xff\xfe\n")
    with pytest.raises(DataFormatError, match=r"line 2: not valid UTF-8"):
        corpora.load_text_lines(bad)
    with pytest.raises(FileNotFoundError):
        corpora.load_text_lines(tmp_path / "missing.txt")


BOM = "\ufeff".encode()  # what Windows Notepad puts at the start of a file saved as UTF-8


def test_bom_and_crlf_give_the_same_texts_as_the_clean_file(tmp_path):
    from helpers import DATA_DIR

    clean = DATA_DIR / "hindi_heldout_hi.txt"
    windows = tmp_path / "hindi_heldout_hi.txt"
    windows.write_bytes(BOM + clean.read_bytes().replace(b"\n", b"\r\n"))
    texts = corpora.load_text_lines(windows, "hindi")
    assert texts == corpora.load_text_lines(clean, "hindi")
    assert not any("\r" in text or "\ufeff" in text for text in texts)


def test_windows_text_file_refusals_name_the_line(tmp_path):
    path = tmp_path / "hi.txt"
    path.write_bytes(BOM + "नमस्ते।\r\n\r\nHello\r\n".encode())
    with pytest.raises(DataFormatError, match=r"hi.txt, line 3: expected Hindi in Devanagari only"):
        corpora.load_text_lines(path, "hindi")
    joined = tmp_path / "joined.txt"  # two Notepad files joined: the second one's byte-order mark is in the text
    joined.write_bytes(BOM + "नमस्ते।\r\n".encode() + BOM + "आप कैसे हैं?\r\n".encode())
    with pytest.raises(DataFormatError, match=r"joined.txt, line 2, column 1: a byte-order mark \(U\+FEFF\)"):
        corpora.load_text_lines(joined, "hindi")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(BOM + "ठीक\r\n\r\n".encode() + b"\xff\r\n")
    offset = len(BOM + "ठीक\r\n\r\n".encode())
    message = rf"bad.txt, line 3: not valid UTF-8 \(byte {offset}: 0xff\); save the file as UTF-8"
    with pytest.raises(DataFormatError, match=message):
        corpora.load_text_lines(bad)


def test_stdlib_functions_read_sources_with_a_bom_and_crlf(tmp_path, monkeypatch):
    # "json" is a held-out module and "os" a training one (see HELDOUT_MODULES below)
    source = 'def documented(a):\n    """Add one."""\n    return a + 1\n'
    (tmp_path / "json.py").write_bytes(BOM + source.replace("\n", "\r\n").encode())
    (tmp_path / "os.py").write_bytes(BOM + source.replace("\n", "\r\n").encode())
    monkeypatch.setattr(corpora, "stdlib_dir", lambda: tmp_path)
    train, heldout = corpora.stdlib_functions()
    assert heldout == corpora.functions_in_source(source, "json")
    assert train == corpora.functions_in_source(source, "os") and train[0]["code"] == source


SOURCE = '''
def documented(a, b=2):
    """Add things."""
    return a + b

def undocumented():
    return 1

class K:
    def method(self):
        """A method."""
        x = 1
        return x

def stub():
    """Only a docstring."""
'''


def test_functions_in_source():
    found = corpora.functions_in_source(SOURCE, "mod")
    assert [f["name"] for f in found] == ["documented", "method"]
    first = found[0]
    assert first["prompt"] == 'def documented(a, b=2):\n    """Add things."""\n'
    assert first["code"].endswith("return a + b\n") and corpora.parses(first["code"])
    assert found[1]["code"].startswith("def method(self):")  # dedented
    assert corpora.functions_in_source("def broken(:\n", "m") == []


# Golden split, measured once: crc32 of the module name. The held-out functions in data/reference/06_cpt_code (e.g.
# asyncio.base_events.start_tls, fractions._div) were chosen by it.
HELDOUT_MODULES = ["json", "asyncio.base_events", "collections.__init__", "multiprocessing.resource_sharer", "code",
                   "fractions", "mailcap", "distutils.text_file"]
TRAIN_MODULES = ["json.decoder", "email.parser", "http.client", "os", "re._parser", "typing", "argparse",
                 "logging.handlers", "xml.dom.minidom", "unittest.mock", "tkinter.ttk", "pathlib", "statistics",
                 "zipfile", "csv", "ast", "inspect", "dataclasses", "decimal", "heapq", "shutil", "textwrap"]


def test_module_split_is_stable_across_processes_and_versions():
    # Catches: a split by Python's hash() (salted per process by PYTHONHASHSEED, so train and held-out would change
    # from run to run and no longer match the committed references) or any other change of the split function.
    assert [m for m in HELDOUT_MODULES + TRAIN_MODULES if corpora.is_heldout_module(m)] == HELDOUT_MODULES
    share = sum(corpora.is_heldout_module(f"m{i}") for i in range(2000)) / 2000
    assert 0.05 < share < 0.15  # percent=10 holds out about a tenth
    assert corpora.is_heldout_module("json", percent=100) and not corpora.is_heldout_module("json", percent=0)


def test_stdlib_functions_split_by_module():
    train, heldout = corpora.stdlib_functions()
    assert len(train) > 1000 and len(heldout) > 50
    assert not {f["module"] for f in train} & {f["module"] for f in heldout}
    assert all("test" not in f["module"].split(".") for f in train + heldout)


def test_cut_function_and_parses():
    prompt = 'def f(x):\n    """Double."""\n'
    assert corpora.cut_function(prompt, "    return 2 * x\n\ndef g():\n    pass\n") == prompt + "    return 2 * x\n\n"
    assert corpora.parses(prompt + "    return 2 * x\n")
    assert not corpora.parses(prompt + "    return (2 *\n")


def test_has_body_needs_a_statement_beyond_the_docstring():
    prompt = 'def double(x):\n    """Return twice x."""\n'
    assert corpora.parses(prompt) and not corpora.has_body(prompt)  # parses, but nothing was generated
    assert corpora.has_body(prompt + "    return 2 * x\n")
    assert corpora.has_body(prompt + "    y = x + x\n    return y\n")
    assert not corpora.has_body(prompt + "    pass\n") and not corpora.has_body(prompt + "    ...\n")
    assert not corpora.has_body(prompt + "    return (2 *\n")  # does not parse
    assert not corpora.has_body("x = 1\n")  # no function
    assert corpora.has_body("def f():\n    return 1\n")  # no docstring: the first statement counts


def test_next_line_tasks_cut_at_line_ends_and_skip_trivial_lines():
    code = (
        'def f(items):\n'
        '    """Sum the even items."""\n'
        '    total = 0  # the running sum\n'
        '    # a comment line\n'
        '    for item in items:\n'
        '        if item % 2 == 0:\n'
        '            total += item\n'
        '        else:\n'
        '\n'
        '            continue\n'
        '    return total\n'
    )
    function = {"name": "f", "code": code, "prompt": 'def f(items):\n    """Sum the even items."""\n'}
    tasks = corpora.next_line_tasks([function], per_function=10)
    # not the first body line, no comment, no line under 12 characters ("else:", "continue")
    assert [t["target"] for t in tasks] == ["for item in items:", "if item % 2 == 0:", "total += item", "return total"]
    for task in tasks:
        assert not task["prompt"].endswith("\n") and code.startswith(task["prompt"])
        assert code[len(task["prompt"]) :].lstrip("\n").strip().startswith(task["target"])
    assert len(corpora.next_line_tasks([function], per_function=2)) == 2
    assert corpora.next_line_tasks([{**function, "prompt": "def g():\n"}]) == []  # prompt must be the code's start


def test_first_line_of_a_continuation():
    assert corpora.first_line("\n\n        total += item\n    return") == "total += item"
    assert corpora.first_line("   \n") == ""


def test_drop_translations_keeps_the_hindi_and_hindi_parentheses():
    from helpers import DATA_DIR

    assert corpora.drop_translations("नमस्ते, आप कैसे हैं? (Hello, how are you?)") == "नमस्ते, आप कैसे हैं?"
    assert corpora.drop_translations("एक (1) और दो (one and two) (2)") == "एक (1) और दो (2)"
    lines = corpora.load_text_lines(DATA_DIR / "hindi_train.txt", "bilingual")
    stripped = [corpora.drop_translations(line) for line in lines]
    assert all(stripped) and not any(corpora.LATIN.search(line) for line in stripped)
    for line in stripped:
        corpora.check_script(line, "hindi", "stripped line")
