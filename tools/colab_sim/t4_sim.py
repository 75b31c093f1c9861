"""tests/colab_t4.ipynb in the simulated Colab (the `t4` mode): copied into an empty folder of a fresh venv-colab-sim/
beside a zip of this working tree (as a teacher uploads one) and executed there (REPO left empty, so that it takes the
zip; NOTEBOOKS: the ones named), asserting that it ran through on the zip, wrote its report, and that every chosen
notebook passed. What that notebook calls is tools.colab_sim.t4, on a real Colab too."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from helpers.colab import HELD
from tools.colab_sim.execute import cell_seconds, execute, first_error
from tools.colab_sim.sources import ROOT
from tools.colab_sim.t4 import ANSI, T4_REPORT, t4_markdown
from tools.colab_sim.venv import diff, installed, log, sim_env
from tools.execute import RUN_KEY

T4_NOTEBOOK = ROOT / "tests" / "colab_t4.ipynb"
T4_ZIP_PREFIX = "smol-trainer-notebooks/"  # the folder the zip's files sit in, as `git archive --prefix=` writes it


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


def check_t4(executed: dict, report: dict | None, numbers: list[str]) -> None:
    """Assert that tests/colab_t4.ipynb ran through, wrote its report, and that every chosen notebook passed."""
    found = first_error(executed)
    stopped = executed.get("metadata", {}).get(RUN_KEY, {}).get("stopped")
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
    stopped = executed["metadata"][RUN_KEY]["stopped"]
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
        "seconds": executed["metadata"][RUN_KEY]["seconds"],
        "restarted": restarted,
        "zip_kb": zip_kb,
        "cells": cell_seconds(executed),
        "changes": diff(before, after),
        "report": report,
    }
