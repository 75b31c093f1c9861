"""The simulated Colab's image: venv-colab-sim/ built with the versions of Colab's GPU image
(tests/colab/colab-freeze.txt), pip in it, and the environment its notebooks run in.

Stand-ins: this machine's CPU torch 2.13.0 wheel replaces Colab's torch 2.11.0+cu128, torchvision and torchaudio are
left out (see STAND_INS), and Python is this machine's 3.11, not Colab's 3.13.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from helpers.colab import normalize
from tools.colab_sim.sources import ROOT, requirement

FREEZE = ROOT / "tests" / "colab" / "colab-freeze.txt"
VENV = ROOT / "venv-colab-sim"
# This machine's CPU torch wheel stands in for Colab's CUDA build. torchvision and torchaudio are left out: the registry
# has only CUDA builds of them, which do not load with a CPU torch, and Unsloth's import refuses such a torchvision
# ("operator torchvision::nms does not exist"; measured 2026-11-29). On Colab the three come as one matched CUDA set.
STAND_INS = {"torch": "torch==2.13.0"}
LEFT_OUT = ("torchvision", "torchaudio")
# Colab's line is not kept for these: the stand-in torch 2.13 requires setuptools>=77.0.3; Colab has 75.2.0 (its
# torch 2.11 does not ask for more). The simulated image keeps the setuptools that the stand-in torch brings.
LEFT_TO_STAND_INS = ("setuptools",)
# Only for running the notebooks under test here; Colab has no nbval.
HARNESS = (requirement(ROOT / "requirements.txt", "nbval"),)


def log(message: str) -> None:
    print(f"[colab-sim] {message}", flush=True)


def colab_freeze(path: Path = FREEZE) -> dict[str, str]:
    """{name: version} from the vendored freeze lines."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==", 1)
            found[normalize(name)] = version
    return found


def pip(python: Path, *args: str, quiet: bool = True) -> None:
    command = [str(python), "-m", "pip", *args, *(["-q"] if quiet else []), "--disable-pip-version-check"]
    subprocess.run(command, check=True)


def installed(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {normalize(row["name"]): row["version"] for row in json.loads(out)}


def build_venv(freeze: dict[str, str]) -> Path:
    """A fresh venv seeded with Colab's versions (stand-ins for the CUDA builds); returns its python."""
    if VENV.exists():
        shutil.rmtree(VENV)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    python = VENV / "bin" / "python"
    pip(python, "install", f"pip=={freeze['pip']}" if "pip" in freeze else "pip")
    pip(python, "install", STAND_INS["torch"])  # alone first: the local CPU wheel is the one pip takes
    torch_version = installed(python)["torch"]
    seed = [
        f"{name}=={version}"
        for name, version in freeze.items()
        if name not in (*STAND_INS, *LEFT_OUT, *LEFT_TO_STAND_INS)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join([f"torch=={torch_version}", *seed]) + "\n")
    try:
        pip(python, "install", "-c", constraints.name, *seed, *HARNESS)
    finally:
        os.unlink(constraints.name)
    return python


def sim_env(extra: dict[str, str] | None = None, hub: bool = False) -> dict[str, str]:
    """The simulated Colab's environment. hub=True leaves the hub switches unset, as on Colab (the hub is still
    unreachable from this machine: urllib fails at once); otherwise HF_HUB_OFFLINE=1."""
    drop = (
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "SMOL_RUNS_DIR",
        "HF_HUB_OFFLINE",
        "TRANSFORMERS_OFFLINE",
        "HF_DATASETS_OFFLINE",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(COLAB_RELEASE_TAG="colab-sim", SMOKE_TEST="1", GIT_TERMINAL_PROMPT="0")
    if not hub:
        env["HF_HUB_OFFLINE"] = "1"
    env.update(extra or {})
    return env


def diff(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {
        "added": sorted(f"{n}=={v}" for n, v in after.items() if n not in before),
        "changed": sorted(f"{n} {before[n]} -> {v}" for n, v in after.items() if n in before and before[n] != v),
        "removed": sorted(n for n in before if n not in after),
    }
