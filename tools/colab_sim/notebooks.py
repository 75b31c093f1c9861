"""One notebook in the simulated Colab (the `notebooks` mode): copied alone into an empty folder, its two first cells
(the bundle and the install cell, exact source) run there with COLAB_RELEASE_TAG set, timed, with what they changed
recorded and checked (torch, torchvision, torchaudio, numpy and triton unchanged, no nvidia-* package); then the hub
outage (tools.colab_sim.outage); then, with the offline copy the outage's message names installed, the whole notebook
under nbval in the smoke profile, in a new kernel (as after Runtime -> Restart session), MODEL_SOURCE "auto" falling
back to the offline copy."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from helpers.colab import HELD
from tools.colab_sim.outage import hub_outage
from tools.colab_sim.sources import cell_sources
from tools.colab_sim.venv import diff, installed, log, pip, sim_env


def run_notebook(python: Path, notebook: Path) -> dict[str, object]:
    """Run the first two cells; then the notebook during a hub outage (it must stop in its model cell, saying what to
    do); then, with the offline copy installed, the whole notebook under nbval; in an empty folder holding only the
    notebook."""
    work = Path(tempfile.mkdtemp(prefix="colab-sim-"))
    shutil.copy(notebook, work / notebook.name)
    sources = cell_sources(notebook)
    before = installed(python)
    start = time.perf_counter()
    first = subprocess.run(  # the code on stdin: the bundle cell alone is longer than one argument may be (128 KiB)
        [str(python), "-"],
        input=sources["bundle"] + "\n" + sources["install"],
        cwd=work,
        env=sim_env(),
        capture_output=True,
        text=True,
    )
    install_seconds = time.perf_counter() - start
    print(first.stdout + first.stderr, flush=True)
    if first.returncode != 0:
        raise SystemExit(f"the first cells of {notebook.name} failed (exit {first.returncode}); output above")
    after = installed(python)
    changes = diff(before, after)
    moved = {name: (before.get(name), after.get(name)) for name in HELD if before.get(name) != after.get(name)}
    nvidia = [n for n in after if n.startswith("nvidia-")]
    assert not moved, f"the install cell moved {moved}"
    assert not nvidia, f"the install cell pulled CUDA packages: {nvidia}"
    assert (work / "smol-trainer-notebooks" / "helpers" / "__init__.py").exists(), "the bundle was not unpacked"
    log(
        f"{notebook.name}: first cells took {install_seconds:.0f} s; {len(changes['added'])} packages added, "
        f"{len(changes['changed'])} changed; torch/numpy/triton unchanged, no torchvision/torchaudio brought in"
    )
    outage = hub_outage(python, work / notebook.name)
    # This machine cannot reach the hub, so the sim installs the offline copy the error message names; the notebook
    # then runs with MODEL_SOURCE "auto" falling back to it (helpers.models.resolve_source).
    start = time.perf_counter()
    pip(python, "install", "--no-deps", outage["offline_pin"])
    offline_seconds = time.perf_counter() - start
    log(f"installed {outage['offline_pin']} (the offline copy the message names) in {offline_seconds:.0f} s")
    shutil.rmtree(work / "smol-trainer-notebooks" / "runs", ignore_errors=True)  # nbval must write its own
    start = time.perf_counter()
    result = subprocess.run(
        [
            str(python),
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "--nbval-cell-timeout=900",
            "-p",
            "no:cacheprovider",
            "-q",
            "--rootdir",
            str(work),
            notebook.name,
        ],
        cwd=work,
        env=sim_env(),
        text=True,
    )
    nbval_seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"{notebook.name} failed under nbval in the simulated Colab (exit {result.returncode})"
    )
    assert (work / "smol-trainer-notebooks" / "runs").exists(), "the notebook wrote no runs/ folder beside the bundle"
    log(f"{notebook.name}: passed under nbval in {nbval_seconds:.0f} s")
    shutil.rmtree(work, ignore_errors=True)
    return {
        "install_seconds": round(install_seconds, 1),
        "hub_outage": outage,
        "offline_install_seconds": round(offline_seconds, 1),
        "nbval_seconds": round(nbval_seconds, 1),
        "changes": changes,
    }


def bundle_kb(notebook: Path) -> float:
    """Size of a notebook's bundle cell in KB (the base64 text that travels inside the .ipynb)."""
    return round(len(cell_sources(notebook)["bundle"].encode()) / 1000, 1)
