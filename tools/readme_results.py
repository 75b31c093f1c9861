"""Write the measured tables of docs/MEASUREMENTS.md and notebooks/TEACHING.md from the committed reference results.

  python -m tools.readme_results            rewrite the tables
  python -m tools.readme_results --check    exit 1 if a table differs from data/reference/

docs/MEASUREMENTS.md gets one table of every results.json and the other measured blocks, each between its markers,
the simulated Colab's block included (its lines from data/reference/colab-sim.json, built by
tools/colab_sim/report.py): this module is that file's one writer (write_measurements; the simulated Colab calls it
after a run), and --check covers every block. The notebooks get their measured spans (tools/notebook_numbers.py),
TEACHING.md its block per notebook (tools/teaching_tables.py). The numbers come from data/reference/ (see
tools/save_reference.py), never typed by hand.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tools import teaching_tables
from tools.markers import refresh, replace_block

ROOT = Path(__file__).resolve().parent.parent
MEASUREMENTS = ROOT / "docs" / "MEASUREMENTS.md"
START, END = "<!-- reference-results:start -->", "<!-- reference-results:end -->"


def block() -> str:
    from helpers import results
    from tools import references

    pattern = "*/*/results.json"
    lines = [references.summary_markdown(results.REFERENCE_DIR, pattern), "", "Where each was measured:", ""]
    for path in sorted(results.REFERENCE_DIR.glob(pattern)):
        run = json.loads(path.read_text(encoding="utf-8"))
        lines.append(f"- `{path.relative_to(ROOT).as_posix()}`: {run['measured']}")
    copies = teaching_tables.executed_copies()
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


def write_measurements() -> bool:
    """Rewrite every generated block of docs/MEASUREMENTS.md from data/reference/, the colab-sim block included: the
    one writer of that file (python -m tools.colab_sim calls it after saving its report). True when it changed."""
    return refresh(MEASUREMENTS, render)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = [refresh(path, render_file, args.check) for path, render_file in
             ((MEASUREMENTS, render), (teaching_tables.TEACHING, teaching_tables.render_teaching))]
    from tools import notebook_numbers  # the notebooks' measured spans
    return max(int(args.check and any(stale)), notebook_numbers.main(["--check"] if args.check else []))


if __name__ == "__main__":
    sys.exit(main())
