"""The notebooks' generated first cells: the bundle of helpers/ and data/, and the Colab install pins."""

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tools import sync_notebooks

ROOT = Path(__file__).resolve().parents[2]


def cell(notebook: Path, tag: str) -> str:
    return "".join(sync_notebooks.cell_by_tag(json.loads(notebook.read_text(encoding="utf-8")), tag)["source"])


def test_every_notebook_carries_the_current_bundle_and_pins():
    assert len(sync_notebooks.NOTEBOOKS) == 6
    assert sync_notebooks.sync(check=True) == [], "run: python -m tools.sync_notebooks"


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


def test_a_change_reaches_only_the_notebooks_that_carry_it(repo_copy):
    assert sync_notebooks.sync(check=True) == []
    before = {p.name: p.read_bytes() for p in sync_notebooks.NOTEBOOKS}
    with open(repo_copy / "helpers" / "rewards.py", "a", encoding="utf-8") as f:  # only 04 imports it
        f.write("\n# changed\n")
    with open(repo_copy / "data" / "dpo_train.jsonl", "a", encoding="utf-8") as f:  # only 03 reads it
        f.write("\n")
    assert sync_notebooks.sync(check=True) == ["03_dpo_alignment.ipynb", "04_grpo_reasoning.ipynb"]
    assert sync_notebooks.sync() == ["03_dpo_alignment.ipynb", "04_grpo_reasoning.ipynb"]
    after = {p.name: p.read_bytes() for p in sync_notebooks.NOTEBOOKS}
    assert [name for name in before if before[name] != after[name]] == ["03_dpo_alignment.ipynb",
                                                                        "04_grpo_reasoning.ipynb"]
    with open(repo_copy / "helpers" / "display.py", "a", encoding="utf-8") as f:  # every notebook imports it
        f.write("\n# changed\n")
    assert len(sync_notebooks.sync(check=True)) == 6


def test_a_changed_pin_makes_every_install_cell_stale(repo_copy):
    path = repo_copy / "requirements.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("trl==1.15.0", "trl==1.14.0"), encoding="utf-8")
    assert len(sync_notebooks.sync(check=True)) == 6


def test_the_bundle_is_reproducible_and_carries_what_its_notebook_uses():
    first, second = (sync_notebooks.make_bundle(sync_notebooks.NOTEBOOKS[4]) for _ in range(2))
    assert first == second
    names = {nb.stem[:2]: set(sync_notebooks.bundle_files(nb)) for nb in sync_notebooks.NOTEBOOKS}
    assert {"helpers/__init__.py", "helpers/colab.py", "helpers/vocab.py", "data/hindi_train.txt",
            "data/hindi_words.txt", "data/reference/05_cpt_hindi/full-cpu-lr2e-5/results.json"} <= names["05"]
    assert {"helpers/problems.py", "helpers/rewards.py"} <= names["04"]
    assert "data/reference/01_full_finetuning/full-cpu/results.json" in names["02"]  # 02 puts 01's run beside its own
    assert "data/reference/02_lora_finetuning/bench-cpu/bench.json" in names["02"]
    for nb, carried in names.items():
        assert not any(n.startswith("recipes/") for n in carried)  # the recipes' own module stays with them
        assert not any(n.endswith(("cell_times.json", "main-job-cpu.json")) or "/spread/" in n for n in carried)
        assert nb == "04" or not {"helpers/problems.py", "helpers/rewards.py"} & carried
        assert nb == "05" or not {"helpers/vocab.py", "data/hindi_words.txt", "data/hindi_train.txt"} & carried
        assert nb == "03" or "data/dpo_train.jsonl" not in carried
        assert not any("/reference/" in n and f"/{nb}_" not in n for n in carried if nb != "02")


def test_bundled_references_keep_the_summary_and_drop_the_per_item_lists():
    carried = sync_notebooks.bundle_files(sync_notebooks.NOTEBOOKS[5])
    full = json.loads(carried["data/reference/06_cpt_code/full-cpu/results.json"])
    committed = json.loads((ROOT / "data/reference/06_cpt_code/full-cpu/results.json").read_text(encoding="utf-8"))
    assert "next_line_tasks" in committed and "next_line_tasks" not in full
    assert full == {k: v for k, v in committed.items() if k not in sync_notebooks.PER_ITEM_KEYS}


@pytest.mark.parametrize("notebook", sync_notebooks.NOTEBOOKS, ids=lambda p: p.name[:2])
def test_every_bundle_cell_is_small(notebook):
    """At most 80 KB; 05 carries its Hindi text and the 23,170-word list it judges generations with (63 KB packed)."""
    limit = 200_000 if notebook.name.startswith("05") else 80_000
    assert len(cell(notebook, "bundle").encode()) <= limit


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
    carried = sync_notebooks.bundle_files(sync_notebooks.NOTEBOOKS[1])
    for name, content in carried.items():
        assert (home / name).read_bytes() == content
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


@pytest.mark.parametrize("notebook", sync_notebooks.NOTEBOOKS, ids=lambda p: p.name[:2])
def test_what_a_bundle_carries_is_enough_to_import_what_its_notebook_imports(notebook, tmp_path):
    """Unpacked alone, first on the path (as on Colab), the bundle's helpers import every module the notebook names;
    helpers import one another only at the top of a module (tests/unit/test_imports.py), so importing them is the
    whole check."""
    for name, content in sync_notebooks.bundle_files(notebook).items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(content)
    named = sorted(sync_notebooks.helpers_named(sync_notebooks.code_of(notebook)))
    code = ("import importlib, helpers\n"
            f"for name in {named!r}:\n    importlib.import_module('helpers.' + name)\nprint(helpers.__file__)")
    # -S: no .pth files, so not the editable install's finder, which would find a missing module in the repository
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), sysconfig.get_paths()["purelib"]])}
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip()) == tmp_path / "helpers" / "__init__.py"
    assert len(named) >= 8
