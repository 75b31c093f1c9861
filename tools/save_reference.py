r"""Commit a measured run as a reference result: data/reference/<notebook>/<profile>-<device>/results.json.

  python -m tools.save_reference runs/recipes/sft_lora-2proc/results.json --recipe sft_lora --device 2proc-cpu \
      --where "2026-11-30, 2-core CPU machine, accelerate launch ... cpu_2proc.yaml"    (a recipe's run)

  python -m tools.save_reference runs/variants/seed2-t1-native/04_grpo_reasoning/results.json --device cpu-seed2 \
      --variant "SEED = 2" --where "..."        (a run with one knob changed, kept beside the notebook's own)

  python -m tools.save_reference runs/01_full_finetuning/results.json --device cpu \
      --where "2026-11-25, 2-core CPU machine" \
      --executed runs/01_full_finetuning/01_full_finetuning.ipynb

It copies the notebook's own results.json unchanged and adds "measured" (when and where, in words). With --executed (the
copy jupyter nbconvert --execute wrote) it also writes cell_times.json beside it: each code cell's section, first line
and wall time, which notebooks/TEACHING.md quotes; for the notebook's own full-profile run (no --variant, no --recipe)
it also writes the executed copy students and teachers preview, notebooks/executed/<notebook>.ipynb (see
executed_copy). Then run python -m tools.sync_notebooks (the notebooks' bundles carry
data/, reference results included) and python -m tools.readme_results (docs/MEASUREMENTS.md and TEACHING.md tables).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
from pathlib import Path

from helpers import results
from tools.execute import cell_seconds
from tools.references import reference_folder
from tools.sync_notebooks import is_bundle

ROOT = Path(__file__).resolve().parent.parent


@functools.cache
def worktrees(root: Path) -> tuple[str, ...]:
    """The repository at `root` and its other git worktrees, resolved (a run made in a `git worktree add` folder
    prints that folder's helpers path); `root` alone where git cannot say."""
    try:
        listed = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=root, capture_output=True, text=True)
    except OSError:
        listed = None
    found = [line.split(" ", 1)[1] for line in (listed.stdout if listed else "").splitlines()
             if line.startswith("worktree ")]
    return tuple(dict.fromkeys([str(root.resolve()), *(str(Path(f).resolve()) for f in found)]))


def portable(text: str, runs: Path | None = None) -> str:
    """`text` without this machine's folders: the runs folder a run wrote to becomes `runs`, the repository (and its
    other worktrees) `<repository>`, the home folder `~` and the temporary folder `<tmp>`, so that no committed output
    or reference carries an absolute path of the machine that made it (tests/unit/test_executed_copies.py scans for
    them)."""
    import tempfile

    folders = {str(Path.home().resolve()): "~", str(Path(tempfile.gettempdir()).resolve()): "<tmp>",
               **{tree: "<repository>" for tree in worktrees(ROOT)}}
    if runs is not None:
        folders[str(runs.resolve())] = "runs"
    for folder, name in sorted(folders.items(), key=lambda item: -len(item[0])):  # the innermost folder first
        if folder not in ("/", ""):
            text = re.sub(re.escape(folder) + r"(?=[/\\\s\"')\]:,]|$)", name, text, flags=re.MULTILINE)
    return text


def save(source: Path, device: str, where: str, recipe: str | None = None, variant: str | None = None) -> Path:
    run = json.loads(source.read_text(encoding="utf-8"))
    if not re.fullmatch(r"[a-z0-9-]+", device):
        raise ValueError(
            f"--device {device!r}: use lower-case letters, digits and '-' (e.g. cpu, h100, t4-emulated-h100)"
        )
    if recipe is not None:  # a recipe's run (recipes/*.py): data/reference/recipes/<config>/<launch>-<device>/
        if "recipe" not in run:
            raise ValueError(f"{source} is a notebook's results.json, not a recipe's: leave out --recipe")
        target = ROOT / results.REFERENCE / "recipes" / recipe / device / "results.json"
    else:
        target = reference_folder(run["notebook"], run["profile"], device, ROOT) / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    extra = {"variant": variant} if variant else {}
    target.write_text(portable(json.dumps({**run, "measured": where, **extra}, indent=2, ensure_ascii=False)) + "\n",
                      encoding="utf-8")
    return target


def first_line(source: str) -> str:
    """A code cell's first line that is not blank, a comment or an import: what a reader recognises it by."""
    lines = [line.strip() for line in source.splitlines()]
    code = [line for line in lines if line and not line.startswith(("#", "import ", "from "))]
    return (code or lines or [""])[0][:100]


def code_cells(cells: list[dict]) -> list[tuple[str, dict]]:
    """Each code cell of a notebook with the heading of the "## " section it sits in."""
    found, section = [], ""
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            headings = [line.lstrip("#").strip() for line in source.splitlines() if line.startswith("## ")]
            section = headings[-1] if headings else section
        elif cell["cell_type"] == "code":
            found.append((section, cell))
    return found


def cell_times(executed: Path) -> list[dict]:
    """Wall seconds of each executed code cell (from the execution timestamps nbclient records), with the section
    heading above it and its first line. The install and bundle cells are left out."""
    found = []
    for section, cell in code_cells(json.loads(executed.read_text(encoding="utf-8"))["cells"]):
        source = "".join(cell["source"])
        if set(cell.get("metadata", {}).get("tags", [])) & {"bundle", "install"}:
            continue
        seconds = cell_seconds(cell)
        if seconds is None:
            raise ValueError(f"{executed}: a code cell has no execution timestamps; was it executed by nbclient?")
        found.append({"section": section, "cell": first_line(source), "seconds": round(seconds, 1)})
    return found


def save_cell_times(executed: Path, reference: Path) -> Path:
    """cell_times.json beside a reference results.json."""
    target = reference.parent / "cell_times.json"
    target.write_text(json.dumps(cell_times(executed), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


EXECUTED = Path("notebooks") / "executed"  # the executed copies, from the repository root
EXECUTED_DIR = ROOT / EXECUTED
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
HEADER_KEY = "executed_copy_header"  # the first markdown cell's metadata: the header text add_header put before it


def comparable_code(cells: list[dict]) -> list[str]:
    """The code cells' sources as an executed copy must match its notebook: the generated bundle cell (tag "bundle",
    tens of KB of base64 that change with every edit of helpers/ or data/) is compared by its tag alone."""
    return [
        "<bundle>" if is_bundle(cell) else "".join(cell["source"])
        for cell in cells
        if cell["cell_type"] == "code"
    ]


def smaller_png(encoded: str) -> str:
    """A base64 PNG re-encoded with a 256-colour palette (plots lose nothing visible and shrink about threefold; a
    heat map of 791 x 648 pixels went from 509 to 160 KB); the original when that is not smaller."""
    import base64
    import io

    from PIL import Image

    raw = base64.b64decode(encoded)
    out = io.BytesIO()
    Image.open(io.BytesIO(raw)).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
        out, "PNG", optimize=True
    )
    return base64.b64encode(out.getvalue()).decode("ascii") if out.tell() < len(raw) else encoded


def executed_copy(executed: Path, reference: Path) -> dict:
    """The executed notebook as the preview copy keeps it: a header on top of its first cell that says what it is
    (date, profile, device: header); the bundle cell's code and the kernel's timing metadata left out; widget views
    (empty without a live kernel) dropped, their HTML fallback kept; plots re-encoded smaller (smaller_png); the
    markdown as the notebook reads now (its quotes of this very run were written after it); every other output as the
    run printed it."""
    run = json.loads(reference.read_text(encoding="utf-8"))
    nb = json.loads(executed.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("execution", None)
        if cell["cell_type"] == "code":
            kept = []
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if WIDGET_VIEW in data:  # a live widget: keep what a page without widgets shows, if anything
                    del data[WIDGET_VIEW]
                    if not set(data) - {"text/plain"}:
                        continue
                if "image/png" in data:
                    data["image/png"] = smaller_png(data["image/png"])
                kept.append(output)
            cell["outputs"] = kept
    nb.get("metadata", {}).pop("widgets", None)
    return finish_copy(nb, run, reference, runs=executed.resolve().parent.parent)


BUNDLE_NOTE = "# The helpers bundle (base64) is left out of this executed copy: open the notebook itself to run it.\n"


def finish_copy(nb: dict, run: dict, reference: Path, runs: Path | None = None) -> dict:
    """What an executed copy gets when it is made and again whenever it is refreshed: the notebook's markdown as it
    reads now, the bundle cell's comment in place of its code (so only what it printed, no value of its own), the
    header written from its reference, and no folder of this machine (portable)."""
    current_text(nb["cells"], run["notebook"])
    for cell in nb["cells"]:
        if is_bundle(cell):
            cell["source"] = [BUNDLE_NOTE]
            cell["outputs"] = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream"]
    add_header(nb["cells"], header(run, reference))
    return json.loads(portable(json.dumps(nb, ensure_ascii=False), runs=runs))


def header(run: dict, reference: Path) -> str:
    """What an executed copy is, in a few words at the top of its first cell: the run's date, profile, device and
    engine, where its numbers and its full "measured" line are, and why a Colab run prints other numbers. Short: the
    copy's main path keeps the notebook's word budget (tests/unit/test_executed_copies.py)."""
    name, where = run["notebook"], reference.resolve().relative_to(ROOT.resolve()).as_posix()
    date = re.match(r"\d{4}-\d{2}-\d{2}", run["measured"])
    return (
        f"> **Executed copy, to read, not to run:** [`{name}.ipynb`](../{name}.ipynb) as its {run['profile']}-profile "
        f"reference run printed it{' on ' + date.group(0) if date else ''}, on {run['device']}, {run['engine']} engine "
        f"(how it ran: `measured` in `{where}`). Offline model (4-bit blocks, 8-bit embeddings): a Colab run prints "
        "other numbers.\n\n"
    )


def add_header(cells: list[dict], text: str) -> None:
    """Put `text` before the first cell's own text (a markdown cell: every notebook's title) and remember it in the
    cell's metadata (current_text keeps it when the notebook's text changes)."""
    if not cells or cells[0]["cell_type"] != "markdown":
        cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": []})
    first = cells[0]
    own = own_text(first)  # a header added before is replaced, not stacked
    first.setdefault("metadata", {})[HEADER_KEY] = text
    first["source"] = [text, *own]


def own_text(cell: dict) -> list[str]:
    """A markdown cell's source without the executed copy's header (add_header)."""
    head = cell.get("metadata", {}).get(HEADER_KEY)
    return cell["source"][1:] if head else cell["source"]


def current_text(cells: list[dict], notebook: str) -> bool:
    """Give an executed notebook's markdown cells the notebook's text as it reads now, where its cells line up with
    the notebook's (the same kinds in the same order); True if any changed."""
    source = ROOT / "notebooks" / f"{notebook}.ipynb"
    current = json.loads(source.read_text(encoding="utf-8"))["cells"] if source.exists() else []
    changed = False
    if [c["cell_type"] for c in current] == [c["cell_type"] for c in cells]:
        for cell, now in zip(cells, current):
            if cell["cell_type"] == "markdown" and own_text(cell) != now["source"]:
                head = cell.get("metadata", {}).get(HEADER_KEY)
                cell["source"], changed = ([head] if head else []) + now["source"], True
    return changed


def refresh_text() -> list[Path]:
    """After editing a notebook's markdown: the committed executed copies take the new text (the header at the top
    of their first cell is rewritten from its reference) and lose any machine path (portable); returns the copies
    rewritten."""
    rewritten = []
    for path in sorted(EXECUTED_DIR.glob("*.ipynb")):
        old = path.read_text(encoding="utf-8")
        nb = json.loads(old)
        head = nb["cells"][0]["metadata"][HEADER_KEY]
        reference = ROOT / head.split("`measured` in `")[1].split("`")[0]
        new = json.dumps(finish_copy(nb, json.loads(reference.read_text(encoding="utf-8")), reference), indent=1,
                         ensure_ascii=False) + "\n"
        if new != old:
            path.write_text(new, encoding="utf-8")
            rewritten.append(path)
    return rewritten


def save_executed_copy(executed: Path, reference: Path) -> Path:
    """notebooks/executed/<notebook>.ipynb from a full-profile reference run of the notebook itself."""
    EXECUTED_DIR.mkdir(parents=True, exist_ok=True)
    nb = executed_copy(executed, reference)
    target = EXECUTED_DIR / f"{json.loads(reference.read_text(encoding='utf-8'))['notebook']}.ipynb"
    target.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if sys.argv[1:] == ["--refresh-text"]:  # the executed copies take their notebooks' current markdown
        print("\n".join(str(p) for p in refresh_text()) or "the executed copies' text is current")
        return
    parser.add_argument("results", type=Path, help="a run's results.json (or only --refresh-text: see refresh_text)")
    parser.add_argument("--device", required=True, help="short device name for the folder: cpu, h100, t4-emulated-h100")
    parser.add_argument("--where", required=True, help="when and where it was measured, in words")
    parser.add_argument(
        "--executed", type=Path, help="the executed notebook of the same run: also write cell_times.json"
    )
    parser.add_argument(
        "--recipe",
        help="a recipe run's config name (sft_lora ...): save under data/reference/recipes/<recipe>/<device>/ "
        "(--device then names the launch too: 1proc-cpu, 2proc-cpu, ddp-h100)",
    )
    parser.add_argument(
        "--variant",
        help="the knob this run changed from the notebook's Settings, e.g. 'SEED = 2' (with --device cpu-seed2): "
        "results.load_reference then prefers the notebook's own settings",
    )
    args = parser.parse_args()
    target = save(args.results, args.device, args.where, args.recipe, args.variant)
    print(target)
    if args.executed:
        print(save_cell_times(args.executed, target))
        run = json.loads(target.read_text(encoding="utf-8"))
        if run["profile"] == "full" and not args.variant and not args.recipe:
            print(save_executed_copy(args.executed, target))


if __name__ == "__main__":
    main()
