"""Write the measured tables of docs/MEASUREMENTS.md and notebooks/TEACHING.md from the committed reference results.

  python -m tools.readme_results            rewrite the tables
  python -m tools.readme_results --check    exit 1 if a table differs from data/reference/

docs/MEASUREMENTS.md gets one table of every results.json and the other measured blocks, each between its markers,
the simulated Colab's block included (its lines from data/reference/colab-sim.json, built by
tools/colab_sim/report.py): this module is that file's one writer (write_measurements; the simulated Colab calls it
after a run), and --check covers every block. The notebooks get their measured spans (tools/notebook_numbers.py).
TEACHING.md gets, per notebook between <!-- measured:<notebook>:start --> and <!-- measured:<notebook>:end -->, the
before -> after numbers of each reference run, the link to its executed copy and the wall time of each long cell
(cell_times.json). The numbers come from data/reference/ (see tools/save_reference.py), never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = ROOT / "docs" / "MEASUREMENTS.md"
TEACHING = ROOT / "notebooks" / "TEACHING.md"
START, END = "<!-- reference-results:start -->", "<!-- reference-results:end -->"
LONG_CELL_S = 5.0  # cells at least this slow in some reference run are listed in TEACHING.md


def executed_copies() -> list[tuple[str, str, int]]:
    """(notebook, path from the repository root, size in KB) of each committed executed copy."""
    from tools.save_reference import EXECUTED

    return [(p.stem, p.relative_to(ROOT).as_posix(), round(p.stat().st_size / 1024))
            for p in sorted((ROOT / EXECUTED).glob("*.ipynb"))]


def block() -> str:
    from helpers import results
    from tools import references

    pattern = "*/*/results.json"
    lines = [references.summary_markdown(results.REFERENCE_DIR, pattern), "", "Where each was measured:", ""]
    for path in sorted(results.REFERENCE_DIR.glob(pattern)):
        run = json.loads(path.read_text(encoding="utf-8"))
        lines.append(f"- `{path.relative_to(ROOT).as_posix()}`: {run['measured']}")
    copies = executed_copies()
    lines += ["", "Executed copies of the full-profile reference runs, to read every output without running anything "
                  "(plots included; GitHub and Jupyter show them):", ""]
    lines += [f"- [`{path}`](../{path}) ({kb} KB)" for _, path, kb in copies] or ["- none committed yet"]
    missing = sorted({p.name for p in references.notebook_reference_dirs()} - {name for name, _, _ in copies})
    if copies and missing:
        lines.append(f"- not yet for {', '.join(missing)} (their reference runs predate the executed copies)")
    return "\n".join(lines)


TIMES_START, TIMES_END = "<!-- notebook-times:start -->", "<!-- notebook-times:end -->"


def times_block() -> str:
    """Whole-notebook wall time (the sum of its code cells, cell_times.json), training time and peak memory of every
    reference run that has cell times."""
    from helpers import results
    from tools import references

    lines = [
        "| notebook | reference run | device | whole notebook s | train s | peak MB |",
        "|---|---|---|---:|---:|---|",
    ]
    totals: dict[str, list[float]] = {}
    for times in sorted(results.REFERENCE_DIR.glob("*/*/cell_times.json")):
        run = json.loads((times.parent / "results.json").read_text(encoding="utf-8"))
        total = sum(cell["seconds"] for cell in json.loads(times.read_text(encoding="utf-8")))
        totals.setdefault(times.parent.name, []).append(total)
        train = run.get("train", {})
        lines.append(
            f"| {run['notebook']} | {times.parent.name} | {run['device']} | {total:.0f} | {train.get('seconds')} | "
            f"{train.get('peak_memory_mb')} ({train.get('memory_kind')}) |"
        )
    notebooks = len(references.notebook_reference_dirs())
    lines.append("")
    lines += main_job_lines(results.REFERENCE_DIR / MAIN_JOB)
    for run_name, seconds in sorted(totals.items()):
        if len(seconds) == notebooks:  # every notebook has this kind of reference run: the whole series, one by one
            lines.append(
                f"- All {notebooks} notebooks, {run_name}: {sum(seconds):.0f} s ({sum(seconds) / 60:.0f} min) "
                "of code cells, one notebook after another."
            )
    return "\n".join(lines)


MAIN_JOB = "main-job-cpu.json"  # one end-to-end ./setup_venv.sh run on a fresh clone (taken from its log)


def main_job_lines(path: Path) -> list[str]:
    """The end-to-end main job: its total, install and per-notebook wall times, and any notebook whose time was
    disturbed (with the clean re-run that replaces it)."""
    if not path.exists():
        return []
    job = json.loads(path.read_text(encoding="utf-8"))
    parts = ", ".join(f"{name[:2]} {seconds} s" for name, seconds in job["notebooks"].items())
    lines = [
        f"- `{job['command']}` end to end on a fresh clone ({job['measured']}): {job['total_seconds']} s "
        f"({job['total_seconds'] / 60:.0f} min), of which {job['install_seconds']} s installing the venv; per "
        f"notebook: {parts}."
    ]
    disturbed = job.get("disturbed", {})
    for name, note in disturbed.items():
        lines.append(f"  - {name}: {note['job_seconds']} s in the job, {note['alone_seconds']} s alone: {note['why']}.")
    if disturbed:
        undisturbed = job["total_seconds"] - sum(n["job_seconds"] - n["alone_seconds"] for n in disturbed.values())
        lines.append(f"  - With the times alone in their place, the job comes to {undisturbed} s "
                     f"({undisturbed / 60:.0f} min).")
    return lines


BENCH_START, BENCH_END = "<!-- bench:start -->", "<!-- bench:end -->"


def bench_block() -> str:
    """Unsloth vs plain transformers + PEFT + TRL on 02's LoRA SFT (./setup_venv.sh bench), per committed device."""
    from helpers import results

    lines = [
        "| device | engine | tokens/s | s per step | peak MB | final loss |",
        "|---|---|---:|---:|---:|---:|",
    ]
    notes = []
    for path in sorted(results.REFERENCE_DIR.glob("*/bench-*/bench.json")):
        bench = json.loads(path.read_text(encoding="utf-8"))
        for name in ("unsloth", "plain"):
            e = bench["engines"][name]
            lines.append(
                f"| {bench['device']} | {name} | {e['tokens_per_second']} | {e['seconds_per_step']} | "
                f"{e['peak_memory_mb']} ({e['memory_kind']}) | {e['final_loss']} |"
            )
        ratio = bench["ratio_unsloth_over_plain"]
        lines.append(
            f"| {bench['device']} | **unsloth / plain** | **{ratio['tokens_per_second']}×** | "
            f"{ratio.get('seconds', '')} | **{ratio['peak_memory_mb']}×** | |"
        )
        steps = bench["steps"]
        notes.append(
            f"- `{path.relative_to(ROOT).as_posix()}`: {steps['warmup']} untimed + {steps['timed']} timed optimizer "
            f"steps per engine; {bench['measured']}. Plain engine: {bench['plain_engine']}."
        )
    return "\n".join(lines + [""] + notes)


ENGINES_START, ENGINES_END = "<!-- engines:start -->", "<!-- engines:end -->"
RECIPES_START, RECIPES_END = "<!-- recipes:start -->", "<!-- recipes:end -->"


def recipes_block() -> str:
    """The recipes' committed runs (data/reference/recipes/<config>/<launch>-<device>/): launch, batch arithmetic,
    time, throughput, memory per rank and losses; then, for each config run both on one process and on several, how
    closely their training losses agree step by step."""
    from tools import references

    lines = [
        "| recipe config | run | device | processes × per-device batch × accumulation | train s | s per step | "
        "tokens/s | peak MB per rank | train loss first → last | held-out loss before → after |",
        "|---|---|---|---|---:|---:|---:|---|---|---|",
    ]
    notes, by_config = [], {}
    for path in sorted(references.RECIPE_REFERENCE_DIR.glob("*/*/results.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        config, name = path.parent.parent.name, path.parent.name
        by_config.setdefault(config, {})[name] = run
        launch, train = run["launch"], run["train"]
        peaks = " / ".join(f"{r['peak_memory_mb']:.0f}" for r in run["ranks"]["per_rank"])
        held = run.get("eval_loss")
        lines.append(
            f"| {config} | {name} | {run['device']} | {launch['processes']} × {launch['per_device_batch']} × "
            f"{launch['gradient_accumulation_steps']} = {launch['effective_batch']} | {train['seconds']:.0f} | "
            f"{train['seconds'] / run['steps']:.2f} | {run.get('tokens_per_second', '-')} | {peaks} "
            f"({train['memory_kind']}) | {run['first_train_loss']} → {run['last_train_loss']} | "
            + (f"{held['before']} → {held['after']} |" if held else "- |")
        )
        notes.append(f"- `{path.relative_to(ROOT).as_posix()}`: {run['measured']}")
    agreement = []
    for config, runs in sorted(by_config.items()):
        single = [r for r in runs.values() if r["launch"]["processes"] == 1]
        for name, run in sorted(runs.items()):
            if not single or run["launch"]["processes"] == 1:
                continue
            a, b = single[0]["loss_curve"]["loss"], run["loss_curve"]["loss"]
            diffs = [abs(x - y) for x, y in zip(a, b)]
            same = next((i for i, d in enumerate(diffs) if d > 0), len(diffs))
            per_pass = -(-run["train_rows"] // run["launch"]["effective_batch"])  # ceil: optimizer steps per pass
            ends = [step for step in range(per_pass, len(diffs) + 1, per_pass)]
            short = run["train_rows"] % run["launch"]["effective_batch"]
            others = [d for step, d in enumerate(diffs, 1) if step not in ends]
            at_ends = max((diffs[e - 1] for e in ends), default=0.0)
            agreement.append(
                f"- {config}, {name} against one process: the training losses are identical (4 decimals) for the "
                f"first {same} of {len(diffs)} steps. The {run['train_rows']} training rows make {per_pass} steps "
                f"per pass" + (f", the last with {short} rows instead of {run['launch']['effective_batch']}; at "
                f"those steps ({', '.join(map(str, ends))}) the runs differ by up to {at_ends:.4f}"
                if short and ends else "") + f"; at every other step by at most {max(others or [0]):.4f}. Held-out "
                f"loss after training: {single[0]['eval_loss']['after']} (one process), {run['eval_loss']['after']} "
                f"({run['launch']['processes']} processes)."
            )
    return "\n".join(lines + [""] + agreement + notes)


def engines_block() -> str:
    """The same notebook and profile on both engines, side by side: every reference folder <profile>-<device>-plain
    next to <profile>-<device> (Unsloth)."""
    from helpers import results

    lines = []
    for plain_path in sorted(results.REFERENCE_DIR.glob("*/*-plain/results.json")):
        unsloth_path = plain_path.parent.with_name(plain_path.parent.name.removesuffix("-plain")) / "results.json"
        if not unsloth_path.exists():
            continue
        runs = {name: json.loads(p.read_text(encoding="utf-8")) for name, p in
                (("Unsloth", unsloth_path), ("plain", plain_path))}
        u, p = runs["Unsloth"], runs["plain"]
        lines += [
            f"**{u['notebook']}**, {u['profile']} profile, {u['device']} "
            f"(`{unsloth_path.parent.name}` and `{plain_path.parent.name}`):",
            "",
            "| measured | Unsloth | plain |",
            "|---|---:|---:|",
            f"| trainable parameters | {u['params']['trainable']:,} | {p['params']['trainable']:,} |",
            f"| training s | {u['train']['seconds']} | {p['train']['seconds']} |",
            f"| peak MB ({u['train']['memory_kind']}) | {u['train']['peak_memory_mb']} | "
            f"{p['train']['peak_memory_mb']} |",
        ]
        plain_metrics = results.headline_metrics(p)
        for metric, pair in results.headline_metrics(u).items():
            other = plain_metrics.get(metric)
            shown = f"{other['before']} -> {other['after']}" if other else "-"
            lines.append(f"| {metric} | {pair['before']} -> {pair['after']} | {shown} |")
        lines.append("")
    notes = [f"- `{p.relative_to(ROOT).as_posix()}`: {json.loads(p.read_text(encoding='utf-8'))['measured']}"
             for p in sorted(results.REFERENCE_DIR.glob("*/*-plain/results.json"))]
    return "\n".join(lines + notes) if lines else "No run on the plain engine is committed yet."


SPREAD_START, SPREAD_END = "<!-- spread:start -->", "<!-- spread:end -->"


def spread_block() -> str:
    """Each effect check of tests/results: its bound, and the smallest and largest value measured across seeds, torch
    thread counts and CPU kernel paths (data/reference/spread/smoke-cpu.json), with what the broken runs gave."""
    from tools import references

    spread = json.loads((references.SPREAD_DIR / "smoke-cpu.json").read_text(encoding="utf-8"))
    faults_path = references.SPREAD_DIR / "faults-smoke-cpu.json"
    faults = {(r["notebook"], r["effect"]): r for r in json.loads(faults_path.read_text(encoding="utf-8"))}
    variants = sorted({v for row in spread for v in row["variants"]})
    cpus = sorted({m["cpu"].get("cpu_model", "?") for row in spread for m in row["variants"].values()})
    lines = [
        f"Smoke profile, {len(variants)} runs ({', '.join(variants)}) on {', '.join(cpus)}:",
        "",
        "| notebook | effect | bound | measured min .. max | broken runs |",
        "|---|---|---|---|---|",
    ]
    for row in spread:
        sign = ">=" if row["at_least"] else "<="
        broken = faults.get((row["notebook"], row["effect"]), {}).get("variants", {})
        shown = "; ".join(f"{name.split('-', 3)[-1]}: {m['value']}" for name, m in broken.items()) or "-"
        lines.append(f"| {row['notebook'][:2]} | {row['effect']} | {sign} {row['bound']} | "
                     f"{row['min']} .. {row['max']} | {shown} |")
    return "\n".join(lines)


def colab_sim_block() -> str:
    """The simulated Colab's block, from the committed data/reference/colab-sim.json (each mode's last run):
    tools/colab_sim/report.py builds its lines (it imports the standard library and helpers.colab only: no venv,
    pip or notebook runs)."""
    from tools.colab_sim import report

    return "\n".join(report.readme_lines(report.load_report(report.REPORT)))


def render(readme: str) -> str:
    from tools.colab_sim.report import README_END, README_START

    readme = replace_block(readme, START, END, block(), "docs/MEASUREMENTS.md")
    readme = replace_block(readme, README_START, README_END, colab_sim_block(), "docs/MEASUREMENTS.md")
    readme = replace_block(readme, SPREAD_START, SPREAD_END, spread_block(), "docs/MEASUREMENTS.md")
    readme = replace_block(readme, ENGINES_START, ENGINES_END, engines_block(), "docs/MEASUREMENTS.md")
    readme = replace_block(readme, BENCH_START, BENCH_END, bench_block(), "docs/MEASUREMENTS.md")
    readme = replace_block(readme, RECIPES_START, RECIPES_END, recipes_block(), "docs/MEASUREMENTS.md")
    return replace_block(readme, TIMES_START, TIMES_END, times_block(), "docs/MEASUREMENTS.md")


def replace_block(text: str, start: str, end: str, body: str, name: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"{name} lacks the markers {start} ... {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


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


def write_measurements() -> bool:
    """Rewrite every generated block of docs/MEASUREMENTS.md from data/reference/, the colab-sim block included: the
    one writer of that file (python -m tools.colab_sim calls it after saving its report). True when it changed."""
    return refresh(MEASUREMENTS, render)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = [refresh(path, render_file, args.check) for path, render_file in
             ((MEASUREMENTS, render), (TEACHING, render_teaching))]
    from tools import notebook_numbers  # the notebooks' measured spans
    return max(int(args.check and any(stale)), notebook_numbers.main(["--check"] if args.check else []))


if __name__ == "__main__":
    sys.exit(main())
