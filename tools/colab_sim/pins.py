"""The install cells' pins resolved as on Colab: for Python 3.13 on manylinux x86-64 with Colab's torch, torchvision,
torchaudio, numpy and triton held as given. Stub wheels stand in for the held packages (PyPI's CUDA torch needs wheels
this registry lacks); tools.carry resolves against the same stubs (held_stubs) for the GPU machine."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from helpers.colab import HELD, normalize, split_pin
from tools.colab_sim.sources import install_pins

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
