"""A notebook executed in a new kernel of the simulated Colab's python (by tools/execute.py, the one way this project
executes notebooks, run there as a file), and what to read from the executed notebook: the first error, each tagged
cell's seconds. The hub-outage check and the T4 harness use it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tools.execute import cell_seconds as seconds_of

EXECUTOR = Path(__file__).resolve().parent.parent / "execute.py"  # run as a file by the sim's python (-P: without
# tools/ on its path), which lacks this repository


def execute(python: Path, notebook: Path, env: dict[str, str], timeout: int = 900) -> dict:
    """tools/execute.py on `notebook` in its folder with the sim's python, printing what the cells print; returns the
    executed notebook (JSON), whose metadata[tools.execute.RUN_KEY] says where it stopped."""
    target = notebook.with_name(notebook.stem + ".executed.ipynb")
    subprocess.run(
        [str(python), "-P", str(EXECUTOR), notebook.name, target.name, str(timeout), "--echo"],
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


def cell_seconds(nb: dict) -> dict[str, float]:
    """{tag: seconds} of an executed notebook's tagged code cells (nbclient's timing record)."""
    return {
        tag: seconds_of(cell)
        for cell in nb["cells"]
        for tag in cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code"
    }
