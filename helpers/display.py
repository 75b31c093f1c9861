"""Show rows of results as a table: HTML in Jupyter, plain text elsewhere."""

from __future__ import annotations

import html
from typing import Any


def html_table(rows: list[dict[str, Any]]) -> str:
    """A small HTML table (text escaped, newlines kept) for notebooks."""
    if not rows:
        return "<p>(no rows)</p>"
    cell = 'style="text-align:left;vertical-align:top;white-space:pre-wrap;max-width:420px"'
    head = "".join(f"<th {cell}>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td {cell}>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def show_table(rows: list[dict[str, Any]]) -> None:
    """Display rows as an HTML table in Jupyter (or print them as text elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        get_ipython = None  # type: ignore[assignment]
    if get_ipython is not None and get_ipython() is not None:
        display(HTML(html_table(rows)))
        return
    for row in rows:
        print(" | ".join(f"{k}: {v}" for k, v in row.items()))
