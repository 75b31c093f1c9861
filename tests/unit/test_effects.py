"""Each effect bound of tools/effects.py lies outside the spread measured across seeds, torch thread counts
and CPU kernel paths (data/reference/spread/smoke-cpu.json, written by tools/spread.py), and rejects the runs of the
deliberately broken changes (data/reference/spread/faults-smoke-cpu.json)."""

import json

import pytest

from tools.effects import EFFECTS, Effect
from tools.references import SPREAD_DIR

SPREAD = SPREAD_DIR / "smoke-cpu.json"
FAULTS = SPREAD_DIR / "faults-smoke-cpu.json"


def rows(path):
    return {(row["notebook"], row["effect"]): row for row in json.loads(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: f"{e.notebook[:2]} {e.name}")
def test_the_bound_lies_outside_the_measured_spread(effect):
    row = rows(SPREAD).get((effect.notebook, effect.name))
    assert row is not None, f"{effect.name} has no measured spread: run python -m tools.spread (see its docstring)"
    variants = list(row["variants"].values())
    # at least three seeds, two thread counts and two kernel paths, on the notebooks as they are
    assert len({v["seed"] for v in variants}) >= 3
    assert len({v["cpu"]["torch_threads"] for v in variants}) >= 2
    assert len({v["cpu"]["cpu_capability"] for v in variants}) >= 2
    values = [v["value"] for v in variants]
    assert (min(values), max(values)) == (row["min"], row["max"])
    if effect.at_least:
        assert effect.bound < row["min"], f"{effect.name}: bound {effect.bound} inside the spread {row['min']}.."
    else:
        assert effect.bound > row["max"], f"{effect.name}: bound {effect.bound} inside the spread ..{row['max']}"


def test_every_deliberately_broken_run_fails_an_effect_of_its_notebook():
    broken = {}
    for (notebook, name), row in rows(FAULTS).items():
        effect = next(e for e in EFFECTS if (e.notebook, e.name) == (notebook, name))
        for variant, measured in row["variants"].items():
            fails = not effect.holds_value(measured["value"])
            broken[(notebook, variant)] = broken.get((notebook, variant), False) or fails
    assert broken, f"{FAULTS} holds no broken run"
    assert all(broken.values()), [key for key, failed in broken.items() if not failed]


def test_holds_compares_in_the_stated_direction():
    lower = Effect("x", "gain", lambda run: run["v"], 0.1)
    upper = Effect("x", "harm", lambda run: run["v"], 0.1, at_least=False)
    assert lower.holds({"v": 0.1}) and not lower.holds({"v": 0.09})
    assert upper.holds({"v": 0.1}) and not upper.holds({"v": 0.11})
    assert "expected >= 0.1" in lower.explain({"v": 0.0})
