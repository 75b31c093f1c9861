"""tests/colab_t4.ipynb: the six notebooks on a real Colab T4. The t4_* functions run there, from the repository that
notebook fetched, and here in the simulated Colab (tools.colab_sim.t4_sim). The standard library, helpers and
tools.colab_sim.sources only: nothing of the simulated Colab's venv or pip is imported."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers.colab import in_colab, installed_version
from tools.colab_sim.sources import install_pins, requirement

T4_REPORT = "colab_t4_report"  # .json and .md, in the notebook's WORK folder
T4_TAIL_LINES = 40
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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
