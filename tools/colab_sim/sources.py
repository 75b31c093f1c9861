"""What the simulated Colab and tests/colab_t4.ipynb read from the repository: a requirement's pin and a notebook's
bundle and install cells. The standard library and helpers.colab only: tests/colab_t4.ipynb imports it on Colab."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from helpers.colab import normalize, split_pin

ROOT = Path(__file__).resolve().parents[2]


def requirement(path: Path, name: str) -> str:
    """The 'name==version' line of `name` in a requirements file (comments and markers dropped)."""
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line and normalize(split_pin(line)[0]) == normalize(name):
            return line
    raise KeyError(f"{name} is not pinned in {path}")


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
