"""No measured number typed into a notebook's text: each is a generated span (tools/notebook_numbers.py) or a
setting the notebook's code defines."""

import io
import json
import re
import tokenize
from pathlib import Path

import pytest

from tools import notebook_numbers, save_reference

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
COPIES = sorted((ROOT / "notebooks" / "executed").glob("[0-9][0-9]_*.ipynb"))

# Numbers that are neither measured nor in the notebook's code, each with its reason. Short on purpose.
ALLOWED = {
    "135": "the model's name, SmolLM2-135M (135 million parameters)",
    "49,152": "SmolLM2's vocabulary size, printed live by the notebooks that use it",
    "576": "SmolLM2-135M's hidden size (its config), used in the LoRA arithmetic",
    "1536": "SmolLM2-135M's MLP width (its config, intermediate_size), used in the LoRA arithmetic",
    "30": "SmolLM2-135M's number of transformer blocks (its config)",
    "48": "the fact questions in data/facts_heldout.jsonl (test_the_allowed_facts_hold)",
    "23,170": "the words of data/hindi_words.txt, notebook 05's word list (test_the_allowed_facts_hold)",
    "0.6931": "ln 2: DPO's loss when the policy equals the reference (also rounded: 0.693)",
    "0.693": "ln 2, rounded",
    "7.4": "e^2: the perplexity of a loss of 2.0",
    "0.05": "the usual significance level",
    "1e-6": "TRL's default learning rate for DPO and GRPO (its docs)",
    "15": "the GB of memory of a free Colab T4",
    "1.0": "a reward function's points (helpers/rewards.py; test_the_allowed_facts_hold): format 1, partial credit 1",
    "2.0": "correctness_reward's points, and the most a reward without correctness pays",
    "4.0": "the most the three reward functions pay together",
}
# Numerals that are not quantities: section, notebook, part and exercise names, headings, dates of citations,
# versions, ranges of sections ("sections 1-7").
NOT_QUANTITIES = [
    r"(?i)\b(?:sections?|notebooks?|segments?|parts?|steps? of section|stage|cells?|level|levels|seed|seeds|E|M|H)"
    r"\s*\d+(?:\s*(?:,|and|or|-|–|to)\s*\d+)*",
    r"(?<![\w.])0[1-6](?:'s)?\b",  # notebook numbers: 01 ... 06
    r"(?m)^#+ \d+",  # "## 3 · The data"
    r"(?m)^\s*\d+\.(?=\s)",  # a numbered list's items
    r"\(\d+(?:[-–]\d+)?\)(?=[;:,.])",  # the introductions' parts: "best practices and pitfalls (9); results (10-12)."
    r"\((?:19|20)\d\d\)|\b(?:19|20)\d\d\b(?=[),;:. ]|$)",  # the year of a cited paper
    r"(?i)\b(?:TRL|PEFT|torch|transformers|Python|version|SmolLM2|Llama|Qwen|GPT|Unsloth|T4|H100|A100|CUDA)"
    r"[\s-]*\d+(?:\.\d+)*",
    r"\b\d+(?:\.\d+)?[BMK]\b",  # model sizes: 7B, 135M
    r"\bQ\d_\d\b|\b\d+-bit\b|\bfloat\d+\b|\bbfloat\d+\b|\bint\d+\b|\bfp\d+\b|\bbf\d+\b",
]
NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?(?:e-?\d+)?)(?![\w.]*\d)")


def code_literals(cells: list[dict]) -> set[str]:
    """The number literals of a notebook's code cells (comments left out): its settings and constants. The text of
    any notebook may name them (02 says which rate 01 used)."""
    found = set()
    for cell in cells:
        if cell["cell_type"] != "code" or "bundle" in cell.get("metadata", {}).get("tags", []):
            continue
        try:
            for token in tokenize.generate_tokens(io.StringIO("".join(cell["source"])).readline):
                if token.type == tokenize.NUMBER:
                    found.add(token.string)
        except (tokenize.TokenError, IndentationError):
            continue
    return found | {str(int(float(n))) for n in found if re.fullmatch(r"\d+\.0|\d+e\d+", n)}


def typed_numbers(text: str, allowed: set[str]) -> list[str]:
    """The numbers of a markdown text that are typed by hand: outside spans, code, links, HTML and the
    NOT_QUANTITIES, and neither `allowed` nor ALLOWED. Each comes with a few words around it."""
    text = notebook_numbers.strip_spans(text)
    text = re.sub(r"```.*?```|`[^`]*`|\$[^$]*\$|\]\([^)]*\)|<[^>]*>|https?://\S+", " ", text, flags=re.DOTALL)
    for pattern in NOT_QUANTITIES:
        text = re.sub(pattern, " ", text)
    found = []
    for match in NUMBER.finditer(text):
        if match[1].replace(",", "") not in allowed and match[1] not in ALLOWED:
            found.append(f"{match[1]!r} in '...{text[max(0, match.start() - 40):match.end() + 20]}...'"
                         .replace("\n", " "))
    return found


def markdown_cells(path: Path) -> list[tuple[int, str]]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(i, "".join(save_reference.own_text(c))) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", NOTEBOOKS + COPIES, ids=lambda p: f"{p.parent.name}/{p.stem[:2]}")
def test_no_measured_number_is_typed_into_the_text(path):
    assert NOTEBOOKS and COPIES, "no notebooks found"
    allowed = set().union(*(code_literals(json.loads(p.read_text(encoding="utf-8"))["cells"]) for p in NOTEBOOKS))
    typed = [f"cell {i}: {n}" for i, text in markdown_cells(path) for n in typed_numbers(text, allowed)]
    assert not typed, ("numbers typed into the text: make each a span written from data/reference/ "
                       "(tools/notebook_numbers.py), or say what to look at in the output below:\n" + "\n".join(typed))


def test_every_span_matches_its_reference():
    stale = [line for path in NOTEBOOKS for line in notebook_numbers.stale(path)]
    assert not stale, "run python -m tools.notebook_numbers:\n" + "\n".join(stale)
    spans = sum(len(notebook_numbers.SPAN.findall(text)) for path in NOTEBOOKS for _, text in markdown_cells(path))
    assert spans >= 20, f"only {spans} spans: were the notebooks' quotes of their references lost?"


def test_a_typed_stale_number_fails_and_a_span_passes(tmp_path, monkeypatch):
    text = "Training took 321 s in the full profile; the loss fell to 1.5735."
    assert [n.split(" in ")[0] for n in typed_numbers(text, set())] == ["'321'", "'1.5735'"]
    spanned = ("Training took <!--m:03/full-cpu:train.seconds|.0f-->321<!--/m--> s; the loss fell to "
               "<!--m:01/full-cpu:eval_loss.after-->1.5735<!--/m-->.")
    assert typed_numbers(spanned, set()) == []
    assert typed_numbers("With MAX_STEPS = 60 we train 60 steps (section 7, notebook 02's table).", {"60"}) == []
    # The generator writes a span from its reference, and the check sees a stale one.
    folder = tmp_path / "data" / "reference" / "01_x" / "full-cpu"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({"train": {"seconds": 1368.94}, "eval_loss": {"after": 1.5}}))
    monkeypatch.setattr(notebook_numbers, "REFERENCE_DIR", tmp_path / "data" / "reference")
    notebook_numbers.load.cache_clear()
    nb = tmp_path / "01_x.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": [
        "took <!--m:01/full-cpu:train.seconds|,.0f-->321<!--/m--> s, ",
        "loss <!--m:01/full-cpu:eval_loss.after-->?<!--/m-->"
    ]}]}))
    assert len(notebook_numbers.stale(nb)) == 2
    assert notebook_numbers.render_notebook(nb) and not notebook_numbers.stale(nb)
    assert "".join(json.loads(nb.read_text())["cells"][0]["source"]).endswith("-->1,369<!--/m--> s, loss "
                                                                              "<!--m:01/full-cpu:eval_loss.after-->"
                                                                              "1.5<!--/m-->")
    # A span is one word of source, as it is one word on the page: whitespace inside leaves it unmatched, typed.
    assert typed_numbers("<!--m:01/full-cpu:eval_loss.after * 1-->1.5<!--/m-->", set()) != []
    notebook_numbers.load.cache_clear()


def test_flips_reads_notebook_04s_per_problem_rows():
    run = notebook_numbers.load("04/full-cpu")
    whole = notebook_numbers.stage_flips(run, "cold_start", "grpo")
    assert (whole["wrong_to_right"], whole["right_to_wrong"]) == (run.grpo_flips.wrong_to_right,
                                                                 run.grpo_flips.right_to_wrong)
    by_level = [notebook_numbers.stage_flips(run, "cold_start", "grpo", level=lv) for lv in (1, 2, 3)]
    assert sum(f["items"] for f in by_level) == whole["items"]
    assert sum(f["wrong_to_right"] for f in by_level) == whole["wrong_to_right"]
    for level, f in zip((1, 2, 3), by_level):
        assert round(f["right_after"] / f["items"], 4) == run.after_grpo_by_level[level]
    assert notebook_numbers.stage_flips(run, "cold_start", "grpo", first=400)["items"] == 400


def test_the_allowed_facts_hold():
    facts = (ROOT / "data" / "facts_heldout.jsonl").read_text(encoding="utf-8").splitlines()
    assert len([line for line in facts if line.strip()]) == 48
    words = (ROOT / "data" / "hindi_words.txt").read_text(encoding="utf-8").split()
    assert len(words) == 23170
    from transformers import AutoConfig

    from helpers import models, rewards

    perfect = ["<reasoning>9 + 8 = 17</reasoning>\n<answer>17</answer>"]
    points = [fn(perfect, answer=[17])[0] for fn in rewards.REWARD_FUNCTIONS]
    assert points == [1.0, 2.0, 1.0] and sum(points) == 4.0
    config = AutoConfig.from_pretrained(models.offline_model_dir())
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers, config.vocab_size) == (
        576, 1536, 30, 49152)
