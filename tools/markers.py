"""Generated blocks in Markdown files: the text between a start and an end marker comment, rewritten from data
(docs/MEASUREMENTS.md, notebooks/TEACHING.md), or checked against it."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def replace_block(text: str, start: str, end: str, body: str, name: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{name} lacks the markers {start} ... {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def refresh(path: Path, render_file: Callable[[str], str], check: bool = False) -> bool:
    """Render the generated blocks of the file at path. With check, say so on stderr when they differ from the file;
    otherwise write them. True when the file was stale (and, without check, rewritten)."""
    old = path.read_text(encoding="utf-8")
    new = render_file(old)
    if new == old:
        return False
    if check:
        print(f"{path.name}: measured tables are stale: run python -m tools.readme_results", file=sys.stderr)
    else:
        path.write_text(new, encoding="utf-8")
        print(f"{path.name}: measured tables rewritten")
    return True
