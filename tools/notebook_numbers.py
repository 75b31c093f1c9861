"""Measured numbers in the notebooks' markdown, written from the committed reference runs, never typed.

  python -m tools.notebook_numbers            rewrite every span in notebooks/*.ipynb
  python -m tools.notebook_numbers --check    exit 1 if a span differs from data/reference/

A number that a notebook's text quotes from a reference run is a span that Jupyter, Colab and GitHub do not show the
markers of:

    <!--m:01/full-cpu:eval_loss.after-->1.5735<!--/m-->
    <!--m:04/full-cpu:train.seconds|,.0f-->3,376<!--/m-->
    <!--m:04/full-cpu:flips('cold_start','grpo',first=400).p_value-->0.053<!--/m-->

After `m:` comes the reference, `<notebook number>/<folder>` under data/reference/ (its results.json; or
`<number>/<folder>/<file>.json`), then a Python expression over that file's top-level keys, where dicts read with dots
(`_` standing for a space in a key), optionally followed by `|format` (a format spec, as in f"{value:format}"). A span
holds no whitespace, so that its source counts as the one word a reader sees. The expression may also call
`ref('04/full-cpu-seed2')` (another reference), `flips(a,b,first=None,level=None)` (paired counts of two stages'
per-problem rows in notebook 04's `heldout_right`, helpers.paired.flips, optionally on the first problems or one
level only), `facts_flips(a,b)` (paired counts of two runs' fact questions, each row's `right_after`) and round, abs,
min, max, sum, len. tests/unit/test_notebook_numbers.py fails on a number in a notebook's markdown outside a span that
is not a setting the notebook's code defines.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "data" / "reference"
NOTEBOOKS = ROOT / "notebooks"
SPAN = re.compile(r"<!--m:(?P<ref>\d\d/[\w.-]+(?:/[\w.-]+\.json)?):(?P<expr>\S+?)-->(?P<value>\S*?)<!--/m-->")


class Dots:
    """A JSON object whose keys read as attributes (run.eval_loss.after) or items (by_level[1] finds "1")."""

    __slots__ = ("data",)

    def __init__(self, data: dict) -> None:
        self.data = data

    def __getattr__(self, name: str) -> Any:
        for key in (name, name.replace("_", " ")):  # `_` for a space: generation_chars_per_second.base_tokenizer
            if key in self.data:
                return dots(self.data[key])
        raise AttributeError(name)

    def __getitem__(self, key: Any) -> Any:
        return dots(self.data[key] if key in self.data else self.data[str(key)])


def dots(value: Any) -> Any:
    return Dots(value) if isinstance(value, dict) else value


@cache
def load(name: str) -> Dots:
    """A reference by its short name, '04/full-cpu' or '02/bench-cpu/bench.json'."""
    number, folder, *file = name.split("/")
    found = sorted(REFERENCE_DIR.glob(f"{number}_*/{folder}/{file[0] if file else 'results.json'}"))
    if len(found) != 1:
        raise KeyError(f"reference {name!r}: {len(found)} files match under data/reference/")
    return Dots(json.loads(found[0].read_text(encoding="utf-8")))


@cache
def heldout_levels(train: int, train_seed: int, count: int, seed: int) -> list[int]:
    """The level of each of notebook 04's held-out problems, drawn as the notebook draws them (section 3)."""
    from helpers import problems

    seen = {p["question"] for p in problems.make_problems(train, seed=train_seed)}
    return [p["level"] for p in problems.make_problems(count, seed=seed, exclude=seen)]


def stage_flips(run: Dots, before: str, after: str, first: int | None = None, level: int | None = None) -> Dots:
    """helpers.paired.flips between two stages of notebook 04's per-problem rows (`heldout_right`)."""
    from helpers import paired

    rows = [(b == "1", a == "1") for b, a in zip(run["heldout_right"][before], run["heldout_right"][after])][:first]
    if level is not None:
        settings = run["settings"]
        levels = heldout_levels(settings["n_train_problems"], settings["train_seed"], settings["n_heldout"],
                                settings["heldout_seed"])
        rows = [row for row, lv in zip(rows, levels) if lv == level]
    return Dots(paired.flips([b for b, _ in rows], [a for _, a in rows]))


def facts_flips(before: list[dict], after: list[dict]) -> Dots:
    """helpers.paired.flips between two runs' answers to the same fact questions (each row's `right_after`)."""
    from helpers import paired

    return Dots(paired.flips([r["right_after"] for r in before], [r["right_after"] for r in after]))


def value(ref: str, expr: str) -> str:
    """The text a span shows: the expression evaluated on the reference, formatted."""
    expression, _, spec = expr.partition("|")
    run = load(ref)
    names = {**{key: dots(v) for key, v in run.data.items() if key.isidentifier()}, "run": run,
             "ref": load, "flips": lambda *a, **k: stage_flips(run, *a, **k), "facts_flips": facts_flips,
             "round": round, "abs": abs, "min": min, "max": max, "sum": sum, "len": len}
    try:
        result = eval(expression.strip(), {"__builtins__": {}}, names)  # noqa: S307 (the repository's own text)
    except Exception as error:
        raise ValueError(f"<!--m:{ref}:{expr}-->: {type(error).__name__}: {error}") from None
    return format(result, spec.strip()) if spec.strip() else str(result)


def render(text: str) -> str:
    """`text` with every span's value written from its reference."""
    return SPAN.sub(lambda m: f"<!--m:{m['ref']}:{m['expr']}-->{value(m['ref'], m['expr'])}<!--/m-->", text)


def strip_spans(text: str) -> str:
    """`text` without its spans (markers and values): what is left is typed by hand."""
    return SPAN.sub("", text)


def render_notebook(path: Path) -> bool:
    """Rewrite the spans of one notebook's markdown cells; True if any changed."""
    raw = path.read_text(encoding="utf-8")
    nb = json.loads(raw)
    changed = False
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        old = "".join(cell["source"])
        new = render(old)
        if new != old:
            cell["source"], changed = new.splitlines(keepends=True), True
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def stale(path: Path) -> list[str]:
    """The spans of one notebook whose value differs from its reference, as 'cell N: <!--m:...--> a != b'."""
    found = []
    for index, cell in enumerate(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] == "markdown":
            for m in SPAN.finditer("".join(cell["source"])):
                now = value(m["ref"], m["expr"])
                if now != m["value"]:
                    found.append(f"{path.name} cell {index}: <!--m:{m['ref']}:{m['expr']}--> says {m['value']!r}, "
                                 f"the reference {now!r}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a span is stale; write nothing")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if args.check:
        found = [line for path in paths for line in stale(path)]
        print("\n".join(found) or f"{len(paths)} notebooks: every measured span matches data/reference/",
              file=sys.stderr if found else sys.stdout)
        return 1 if found else 0
    for path in paths:
        if render_notebook(path):
            print(f"{path.name}: measured spans rewritten (then: python -m tools.save_reference --refresh-text)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
