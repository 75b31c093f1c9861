"""Write the README's table of committed reference results (data/reference/) between its two markers.

  python tools/readme_results.py            rewrite the table
  python tools/readme_results.py --check    exit 1 if the README's table differs from data/reference/

The numbers come from the results.json files (see tools/save_reference.py), never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- reference-results:start -->", "<!-- reference-results:end -->"


def block() -> str:
    from helpers import results

    pattern = "*/*/results.json"
    lines = [results.summary_markdown(results.REFERENCE_DIR, pattern), "", "Where each was measured:", ""]
    for path in sorted(results.REFERENCE_DIR.glob(pattern)):
        run = json.loads(path.read_text(encoding="utf-8"))
        lines.append(f"- `{path.relative_to(ROOT).as_posix()}`: {run['measured']}")
    return "\n".join(lines)


def render(readme: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the markers {START} ... {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    new = render(readme)
    if args.check:
        if new != readme:
            print("README.md's reference table is stale: run python tools/readme_results.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    print("README.md: reference table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
