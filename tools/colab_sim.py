"""A simulated Colab: the notebooks' real first cells in a venv seeded with Colab's package versions.

  python tools/colab_sim.py [02 05 ... | all]     (./setup_venv.sh colab-sim [...] calls this; default: 02)

1. Builds venv-colab-sim/ with the versions in tests/colab/colab-freeze.txt (Colab's GPU image). Stand-ins: this
   machine's CPU torch 2.13.0 wheel replaces Colab's torch 2.11.0+cu128, torchvision and torchaudio are left out (see
   STAND_INS),
   and Python is this machine's 3.11, not Colab's 3.13.
2. For each notebook: copies it alone into an empty folder and runs its two first cells there (the bundle and the
   install cell, exact source) with COLAB_RELEASE_TAG set, timing them and recording what they changed; then executes
   the whole notebook under nbval in the smoke profile, in a new kernel (as after Runtime -> Restart session).
3. Asserts: torch, torchvision, torchaudio, numpy and triton unchanged (torchvision and torchaudio: still absent), no
   nvidia-* package, every notebook passed.
4. For all six notebooks, resolves the install cell's pins for Python 3.13 on manylinux x86-64 with Colab's torch,
   torchvision, torchaudio, numpy and triton held as given (stub wheels stand in for them, as PyPI's CUDA torch needs
   wheels this registry lacks), and asserts that the resolution moves none of them and pulls no nvidia-* package.
A JSON report goes to runs/colab-sim/report.json.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from helpers.colab import HELD, normalize, split_pin

ROOT = Path(__file__).resolve().parent.parent
FREEZE = ROOT / "tests" / "colab" / "colab-freeze.txt"
VENV = ROOT / "venv-colab-sim"
REPORT = ROOT / "runs" / "colab-sim" / "report.json"
# This machine's CPU torch wheel stands in for Colab's CUDA build. torchvision and torchaudio are left out: the registry
# has only CUDA builds of them, which do not load with a CPU torch, and Unsloth's import refuses such a torchvision
# ("operator torchvision::nms does not exist"; measured 2026-11-29). On Colab the three come as one matched CUDA set.
STAND_INS = {"torch": "torch==2.13.0"}
LEFT_OUT = ("torchvision", "torchaudio")
# Colab's line is not kept for these: the stand-in torch 2.13 requires setuptools>=77.0.3; Colab has 75.2.0 (its
# torch 2.11 does not ask for more). The simulated image keeps the setuptools that the stand-in torch brings.
LEFT_TO_STAND_INS = ("setuptools",)
# Only for running the notebooks under test here; Colab has no nbval.
HARNESS = ("nbval==0.11.0",)
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


def sim_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "SMOL_RUNS_DIR")}
    env.update(COLAB_RELEASE_TAG="colab-sim", SMOKE_TEST="1", HF_HUB_OFFLINE="1", GIT_TERMINAL_PROMPT="0")
    env.update(extra or {})
    return env


def diff(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {
        "added": sorted(f"{n}=={v}" for n, v in after.items() if n not in before),
        "changed": sorted(f"{n} {before[n]} -> {v}" for n, v in after.items() if n in before and before[n] != v),
        "removed": sorted(n for n in before if n not in after),
    }


def run_notebook(python: Path, notebook: Path) -> dict[str, object]:
    """Run the first two cells, then the whole notebook under nbval, in an empty folder holding only the notebook."""
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
    return {"install_seconds": round(install_seconds, 1), "nbval_seconds": round(nbval_seconds, 1), "changes": changes}


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


def resolve_for_colab(notebook: Path, freeze: dict[str, str]) -> dict[str, str]:
    """Dry-run the install cell's pins for Python 3.13 with Colab's held packages given; returns {name: version}."""
    pins, no_deps = install_pins(notebook)
    held = [f"{name}=={freeze[name]}" for name in HELD]
    with tempfile.TemporaryDirectory() as tmp:
        stubs = Path(tmp)
        for name in HELD:
            stub_wheel(stubs, name, freeze[name], TORCH_STUB_REQUIRES if name == "torch" else ())
        (stubs / "held.txt").write_text("\n".join(held) + "\n")
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


def select(args: list[str]) -> list[Path]:
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not args:
        args = ["02"]
    if args == ["all"]:
        return notebooks
    chosen = [nb for nb in notebooks if nb.name[:2] in args]
    if len(chosen) != len(args):
        raise SystemExit(f"unknown notebook numbers in {args}: use 01..06 or all")
    return chosen


def main(argv: list[str]) -> int:
    chosen = select(argv)
    freeze = colab_freeze()
    report: dict[str, object] = {
        "freeze": str(FREEZE.relative_to(ROOT)),
        "python": sys.version.split()[0],
        "notebooks": {},
    }
    start = time.perf_counter()
    log("resolving every notebook's install cell for Python 3.13 with Colab's torch held ...")
    resolved = {
        nb.name: resolve_for_colab(nb, freeze) for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    }
    report["resolved_py313"] = next(iter(resolved.values()))
    log(f"all {len(resolved)} install cells resolve for Python 3.13 without moving {', '.join(HELD)}")
    log(f"building {VENV.name} with Colab's versions (CPU torch stand-in) ...")
    build_start = time.perf_counter()
    python = build_venv(freeze)
    report["venv_build_seconds"] = round(time.perf_counter() - build_start, 1)
    report["seed"] = {n: v for n, v in installed(python).items() if n in HELD}
    for notebook in chosen:
        report["notebooks"][notebook.name] = run_notebook(python, notebook)  # type: ignore[index]
        # the next notebook starts from Colab's image again
        if notebook is not chosen[-1]:
            python = build_venv(freeze)
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["date"] = time.strftime("%Y-%m-%d")
    report["bundle_kb"] = {nb.name: bundle_kb(nb) for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_readme(report)
    log(
        f"passed: {len(chosen)} notebook(s) in {report['seconds']:.0f} s; "
        f"report in {REPORT.relative_to(ROOT)}; README.md updated"
    )
    return 0


def bundle_kb(notebook: Path) -> float:
    """Size of a notebook's bundle cell in KB (the base64 text that travels inside the .ipynb)."""
    return round(len(cell_sources(notebook)["bundle"].encode()) / 1000, 1)


README_START, README_END = "<!-- colab-sim:start -->", "<!-- colab-sim:end -->"


def write_readme(report: dict) -> None:
    """Put this run's measurements between the README's colab-sim markers (numbers from the run, not typed)."""
    lines = [
        "**Measured in the simulated Colab** "
        f"(`./setup_venv.sh colab-sim {' '.join(n[:2] for n in report['notebooks'])}`, "
        f"{report['date']}, this project's 2-core CPU machine; Python {report['python']} and the CPU torch "
        f"{report['seed']['torch']} stand in for Colab's Python 3.13 and torch {colab_freeze()['torch']}):",
        "",
    ]
    for name, run in report["notebooks"].items():
        changes = run["changes"]
        lines.append(
            f"- `{name}`, uploaded alone into an empty folder: the two first cells took {run['install_seconds']:.0f} s "
            f"(unpacking the bundle and installing {len(changes['added'])} packages Colab lacks, "
            f"{'; '.join(changes['added'])}; "
            f"upgrading {len(changes['changed'])} it has: {'; '.join(changes['changed'])}). "
            f"torch, numpy and triton did not move, and no torchvision or torchaudio (left out of the simulated image: "
            "the registry has only CUDA builds of them) and no `nvidia-*` package came in. The "
            f"notebook then passed nbval in the smoke profile in {run['nbval_seconds']:.0f} s, "
            "in a new kernel (as after "
            "*Restart session*)."
        )
    lines.append(
        "- All six install cells resolve for Python 3.13 on manylinux x86-64 with Colab's torch, torchvision, "
        "torchaudio, numpy and triton held (`pip install --dry-run --python-version 3.13 --only-binary=:all:`)."
    )
    sizes = ", ".join(f"{name[:2]}: {kb:.0f}" for name, kb in report["bundle_kb"].items())
    lines.append(f"- Bundle cell size per notebook, KB: {sizes}.")
    lines.append(
        "- Not verifiable here: running on Python 3.13, Colab's CUDA wheels, a real T4, the hub model and datasets."
    )
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_START}\n" + "\n".join(lines) + f"\n{README_END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
