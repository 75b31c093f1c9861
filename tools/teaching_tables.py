"""The measured blocks of notebooks/TEACHING.md, one per notebook: before -> after per reference run, the executed
copy, and the cells slow enough to plan a recording around (from each reference's cell_times.json). Written with
docs/MEASUREMENTS.md by python -m tools.readme_results."""

from __future__ import annotations

import json
from pathlib import Path

from tools.markers import replace_block

ROOT = Path(__file__).resolve().parent.parent
TEACHING = ROOT / "notebooks" / "TEACHING.md"
LONG_CELL_S = 5.0  # cells at least this slow in some reference run are listed in TEACHING.md


def executed_copies() -> list[tuple[str, str, int]]:
    """(notebook, path from the repository root, size in KB) of each committed executed copy."""
    from tools.save_reference import EXECUTED

    return [(p.stem, p.relative_to(ROOT).as_posix(), round(p.stat().st_size / 1024))
            for p in sorted((ROOT / EXECUTED).glob("*.ipynb"))]


def current_sections(notebook: str) -> dict[str, list[str]]:
    """{a code cell's first line (as cell_times.json stores it): the headings of the sections of the cells that start
    so, in order} in the notebook as it is now, so that reference cell times measured on an earlier layout of the
    notebook show today's section names."""
    from tools.save_reference import code_cells, first_line

    path = ROOT / "notebooks" / f"{notebook}.ipynb"
    if not path.exists():
        return {}
    found: dict[str, list[str]] = {}
    for section, cell in code_cells(json.loads(path.read_text(encoding="utf-8"))["cells"]):
        found.setdefault(first_line("".join(cell["source"])), []).append(section)
    return found


def notebook_block(notebook: str) -> str:
    """Before -> after per reference run, then the long cells' wall times per reference run, for TEACHING.md."""
    from helpers import paired, results

    folders = sorted(p for p in (results.REFERENCE_DIR / notebook).glob("*") if (p / "results.json").exists())
    if not folders:
        return "_No reference run of this notebook is committed yet._"
    lines = []
    for folder in folders:
        run = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        pairs = [f"{k} {v['before']} -> {v['after']}" for k, v in results.headline_metrics(run).items()]
        pairs += [f"{k}: {paired.describe(v)}" for k, v in run.items() if k.endswith("_flips")]
        lines.append(f"- **{folder.name}** ({run['device']}): {'; '.join(pairs)}")
    copy = {name: (path, kb) for name, path, kb in executed_copies()}.get(notebook)
    lines.append(f"- **Executed copy** of the full-profile reference run, to pre-run a recording or preview it: "
                 f"[`{copy[0]}`](executed/{notebook}.ipynb) ({copy[1]} KB)" if copy else
                 "- No executed copy of this notebook is committed yet: pre-run it (`./setup_venv.sh run "
                 f"{notebook[:2]}`) to walk through its outputs.")
    timed = {
        f.name: json.loads((f / "cell_times.json").read_text(encoding="utf-8"))
        for f in folders
        if (f / "cell_times.json").exists()
    }
    if not timed:
        return "\n".join(lines + ["", "_No cell times are committed for this notebook yet._"])
    order: list[tuple[str, str]] = []
    seconds: dict[tuple[str, str], dict[str, float]] = {}
    for name in sorted(timed, key=lambda n: not n.startswith("full")):  # full-profile order first
        for cell in timed[name]:
            key = (cell["section"], cell["cell"])
            if key not in seconds:
                order.append(key)
                seconds[key] = {}
            seconds[key][name] = cell["seconds"]
    columns = sorted(timed)
    now = current_sections(notebook)
    # Today's section of each timed cell, matched in order: a first line can repeat ("if ENGINE == ...").
    today = {key: now[key[1]].pop(0) if now.get(key[1]) else None for key in order}
    moved = False
    lines += [
        "",
        f"Cells that took {LONG_CELL_S:.0f} s or more in a reference run (wall seconds, `cell_times.json`):",
        "",
        "| section | cell starts with | " + " | ".join(columns) + " |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for key in order:
        if max(seconds[key].values()) >= LONG_CELL_S:
            cells = " | ".join(f"{seconds[key][c]:.0f}" if c in seconds[key] else "-" for c in columns)
            section = today[key] or (f"{key[0]} (earlier layout)" if now else key[0])
            moved = moved or (bool(now) and today[key] is None)
            lines.append(f"| {section} | `{key[1].replace('|', '/')[:60]}` | {cells} |")
    totals = " | ".join(f"**{sum(cell['seconds'] for cell in timed[c]):.0f}**" for c in columns)
    lines.append(f"| whole notebook | (every code cell) | {totals} |")
    if moved:
        lines += ["", "A section marked *(earlier layout)* names a cell that the notebook has since merged with "
                      "another or moved; the time is that reference run's."]
    if not any("gpu" in c or not c.endswith("cpu") for c in columns):
        lines += ["", "No GPU run of this notebook is committed yet: the columns above are this project's 2-core CPU."]
    return "\n".join(lines)


def render_teaching(text: str) -> str:
    from tools import references

    for folder in references.notebook_reference_dirs():
        start, end = f"<!-- measured:{folder.name}:start -->", f"<!-- measured:{folder.name}:end -->"
        text = replace_block(text, start, end, notebook_block(folder.name), "notebooks/TEACHING.md")
    return text


