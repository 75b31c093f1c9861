"""The notebooks' install step: on Colab, add the pinned libraries without moving Colab's torch or numpy.

Standard library only: it runs before anything else is installed. Outside Colab it installs nothing and says
whether the installed versions match the pins (./setup_venv.sh installs them locally).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable

# Colab's own builds of these stay as they are: pip may not replace them (they are passed as constraints).
HELD = ("torch", "torchvision", "torchaudio", "numpy", "triton")


def in_colab(env: dict[str, str] | None = None) -> bool:
    """True inside a Colab runtime: COLAB_RELEASE_TAG is set there (in `env` when given, else in os.environ), or this
    process has imported google.colab."""
    if env is not None:
        return "COLAB_RELEASE_TAG" in env
    return "COLAB_RELEASE_TAG" in os.environ or "google.colab" in sys.modules


def normalize(name: str) -> str:
    """A distribution name in canonical form (PEP 503): lower case, runs of '_', '.' and '-' as '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_pin(pin: str) -> tuple[str, str]:
    """'name==version' -> (name, version)."""
    name, sep, version = pin.partition("==")
    if not sep or not name.strip() or not version.strip():
        raise ValueError(f"{pin!r} is not an exact pin of the form name==version")
    return name.strip(), version.strip()


def installed_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def unmet(pins: Iterable[str]) -> dict[str, str | None]:
    """The pins whose exact version is not installed: {pin: installed version or None}."""
    found = {}
    for pin in pins:
        name, version = split_pin(pin)
        have = installed_version(name)
        if have != version:
            found[pin] = have
    return found


def held_constraints(names: Iterable[str] = HELD) -> list[str]:
    """'name==version' for each held package that is installed (its local build tag, e.g. +cu128, included)."""
    return [f"{name}=={version}" for name in names if (version := installed_version(name))]


def loaded_distributions() -> dict[str, str]:
    """Versions of the installed distributions whose modules this process has already imported."""
    owners = importlib.metadata.packages_distributions()
    found = {}
    for module in list(sys.modules):
        if "." in module:
            continue
        for dist in owners.get(module, ()):
            version = installed_version(dist)
            if version:
                found[dist] = version
    return found


def changed(before: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Which of `before`'s distributions now have another version on disk: {name: (old, new)}."""
    importlib.invalidate_caches()
    return {name: (old, new) for name, old in before.items() if (new := installed_version(name)) != old}


def pip_commands(pins: list[str], no_deps: list[str], constraints_file: str) -> list[list[str]]:
    """The two pip commands: pins with their dependencies (held packages fixed), then the --no-deps ones."""
    pip = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    return [[*pip, "-c", constraints_file, *pins], [*pip, "--no-deps", *no_deps]]


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        raise RuntimeError(
            f"pip failed (exit {done.returncode}); its output is above.\n"
            "What to do: check that the runtime has internet (Colab does), then Runtime -> Restart session and run "
            "this cell again. If pip reports a conflict, the Colab image has changed since these pins were tested: "
            "please report it with the output above."
        )


def restart_runtime() -> None:
    """Restart the Colab runtime (Colab reconnects by itself; then run the notebook again)."""
    os.kill(os.getpid(), 9)


def install(pins: list[str], no_deps: list[str]) -> None:
    """The install cell's call: install_report, printing what happened and returning nothing (so that the cell shows
    no dict under the printed lines)."""
    install_report(pins, no_deps)


def install_report(
    pins: list[str],
    no_deps: list[str],
    env: dict[str, str] | None = None,
    run: Callable[[list[str]], None] = _run,
    restart: Callable[[], None] = restart_runtime,
) -> dict[str, object]:
    """Install the pins on Colab (nothing elsewhere) and report what happened.

    `pins` install with their dependencies while the HELD packages stay at Colab's versions; `no_deps` install
    without dependencies (unsloth and unsloth_zoo: their requirements would pull another torch or xformers).
    If a module imported before the install now has another version on disk, the runtime must restart.
    """
    missing = unmet([*pins, *no_deps])
    if not in_colab(env):
        if missing:
            listed = ", ".join(f"{pin} (installed: {have or 'none'})" for pin, have in missing.items())
            print(f"Not on Colab: nothing installed. These differ from the tested pins: {listed}.")
            print("Run ./setup_venv.sh (or .\\setup_venv.ps1) to install them; the notebook may still run.")
        else:
            print(f"Not on Colab: nothing to install; all {len(pins) + len(no_deps)} pinned packages are installed.")
        return {"installed": False, "unmet": missing, "changed": {}}
    if not missing:
        print(f"All {len(pins) + len(no_deps)} pinned packages are already installed.")
        return {"installed": False, "unmet": {}, "changed": {}}
    held = held_constraints()
    loaded = loaded_distributions()
    start = time.perf_counter()
    print(f"Installing {len(missing)} packages; keeping Colab's {', '.join(held)} ...")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(held) + "\n")
    try:
        for command in pip_commands(pins, no_deps, constraints.name):
            run(command)
    finally:
        os.unlink(constraints.name)
    moved = changed(dict(split_pin(c) for c in held))
    if moved:
        raise RuntimeError(f"the install moved a package it must keep: {moved}")
    still = unmet([*pins, *no_deps])
    if still:
        raise RuntimeError(f"pip finished but these pins are not installed: {still}")
    print(f"Installed in {time.perf_counter() - start:.0f} s.")
    stale = changed(loaded)
    if stale:
        listed = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in stale.items())
        print(f"Already imported before the install, now replaced on disk: {listed}.")
        print(
            "Restarting the runtime so that Python loads the new versions: "
            "when it has reconnected, run all cells again."
        )
        restart()
    return {"installed": True, "unmet": {}, "changed": stale}
