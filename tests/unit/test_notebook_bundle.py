"""The notebooks' generated first cells: the bundle of helpers/ and data/, and the Colab install pins."""

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools import sync_notebooks

ROOT = Path(__file__).resolve().parents[2]


def cell(notebook: Path, tag: str) -> str:
    return "".join(sync_notebooks.cell_by_tag(json.loads(notebook.read_text(encoding="utf-8")), tag)["source"])


def test_every_notebook_carries_the_current_bundle_and_pins():
    assert len(sync_notebooks.NOTEBOOKS) == 6
    assert sync_notebooks.sync(check=True) == [], "run: python tools/sync_notebooks.py"


@pytest.mark.parametrize("notebook", sync_notebooks.NOTEBOOKS, ids=lambda p: p.name[:2])
def test_install_pins_agree_with_the_requirements_files(notebook):
    tree = ast.parse(cell(notebook, "install"))
    assigned = {t.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets}
    pinned = {
        **sync_notebooks.read_pins(ROOT / "requirements.txt"),
        **sync_notebooks.read_pins(ROOT / "requirements-nodeps.txt"),
    }
    for pin in [*assigned["PINS"], *assigned["NO_DEPS"]]:
        assert pinned[sync_notebooks.normalize(pin.split("==")[0])] == pin
    # Colab's own builds are never installed by the notebook, and unsloth never with its dependencies.
    names = {sync_notebooks.normalize(p.split("==")[0]) for p in assigned["PINS"]}
    assert not names & {"torch", "torchvision", "torchaudio", "numpy", "triton", "xformers", "unsloth", "unsloth-zoo"}
    assert {p.split("==")[0] for p in assigned["NO_DEPS"]} == {"unsloth", "unsloth_zoo"}


@pytest.fixture
def repo_copy(tmp_path, monkeypatch):
    """A copy of the files the generated cells are made from, with the sync module pointed at it."""
    for name in ("helpers", "data", "notebooks"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    monkeypatch.setattr(sync_notebooks, "ROOT", tmp_path)
    monkeypatch.setattr(sync_notebooks, "NOTEBOOKS", sorted((tmp_path / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    return tmp_path


def test_a_changed_helper_makes_every_bundle_stale(repo_copy):
    assert sync_notebooks.sync(check=True) == []
    with open(repo_copy / "helpers" / "rewards.py", "a", encoding="utf-8") as f:
        f.write("\n# changed\n")
    assert len(sync_notebooks.sync(check=True)) == 6
    assert len(sync_notebooks.sync()) == 6 and sync_notebooks.sync(check=True) == []


def test_a_changed_pin_makes_every_install_cell_stale(repo_copy):
    path = repo_copy / "requirements.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("trl==1.15.0", "trl==1.14.0"), encoding="utf-8")
    assert len(sync_notebooks.sync(check=True)) == 6


def test_the_bundle_is_reproducible_and_carries_helpers_and_data():
    first, second = sync_notebooks.make_bundle(), sync_notebooks.make_bundle()
    assert first == second
    names = {p.relative_to(ROOT).as_posix() for p in sync_notebooks.bundle_files()}
    assert {"helpers/__init__.py", "helpers/colab.py", "data/alpaca_heldout.jsonl", "data/hindi_train.txt"} <= names


def run(python: Path, code: str, cwd: Path) -> str:
    # From a file, not `-c`: Linux refuses a single argument over 128 KiB, and the bundle cell is bigger than that.
    script = cwd.parent / "cell.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([str(python), str(script)], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_bundle_cell_unpacks_once_and_survives_a_restart(tmp_path):
    """In a Python without `helpers` (as on Colab), the cell unpacks it; a new process (a restart) still finds it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    work = tmp_path / "work"
    work.mkdir()
    source = cell(sync_notebooks.NOTEBOOKS[1], "bundle")
    assert "unpacked into" in run(python, source, work)
    home = work / "smol-trainer-notebooks"
    for path in sync_notebooks.bundle_files():
        assert (home / path.relative_to(ROOT)).read_bytes() == path.read_bytes()
    # a restart: a new process, from another folder, imports helpers through the .pth file
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = run(python, "import helpers; print(helpers.DATA_DIR)", elsewhere).strip()
    assert Path(found) == home / "data"
    # running the cell again finds it and unpacks nothing
    assert "unpacked" not in run(python, source, work)
    # a notebook with another bundle replaces an older one
    (home / "BUNDLE_ID").write_text("older")
    assert "unpacked into" in run(python, source, work)


def test_the_bundle_cell_leaves_an_installed_helpers_alone(tmp_path):
    out = run(Path(sys.executable), cell(sync_notebooks.NOTEBOOKS[0], "bundle"), tmp_path)
    assert out.strip() == f"helpers: {ROOT / 'helpers'}"
    assert not (tmp_path / "smol-trainer-notebooks").exists()
