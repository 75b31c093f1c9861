"""The simulated Colab's report: data/reference/colab-sim.json (committed; one part per mode, each mode's last run)
and the lines of the colab-sim block of docs/MEASUREMENTS.md built from it (readme_lines). This module writes no
markdown: tools/readme_results.py is the one writer of docs/MEASUREMENTS.md, its colab-sim block included (from the
committed JSON), and its --check covers that block. Imports: the standard library, helpers.colab (through venv) and
this package's light modules, so that tools.readme_results can import it without a venv-colab-sim."""

from __future__ import annotations

import json
from pathlib import Path

from tools.colab_sim.outage import OFFLINE_PACKAGE
from tools.colab_sim.sources import ROOT
from tools.colab_sim.venv import colab_freeze

REPORT = ROOT / "data" / "reference" / "colab-sim.json"  # committed: each mode's last run, which MEASUREMENTS.md shows
README_START, README_END = "<!-- colab-sim:start -->", "<!-- colab-sim:end -->"


def load_report(path: Path = REPORT) -> dict:
    """The report of earlier runs, one part per mode ({} when there is none, or one of an older shape)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {mode: part for mode, part in found.items() if mode in ("notebooks", "t4") and "command" in part}


def save_report(mode: str, part: dict) -> dict:
    """This run's part in place of its mode's in REPORT, the other mode's kept. The caller then rewrites
    docs/MEASUREMENTS.md with tools.readme_results.write_measurements (cli.py does)."""
    report = {**load_report(REPORT), mode: part}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    from tools.save_reference import portable  # no folder of this machine in a committed file

    REPORT.write_text(portable(json.dumps(report, indent=2)) + "\n", encoding="utf-8")
    return report


def load_note(part: dict) -> str:
    """'; mean load 3.1 on 2 cores, ...' where the machine was busier than its cores (the times are then longer)."""
    load = part.get("load")
    if not load or load["average"] is None or load["average"] <= load["cores"]:
        return ""
    return (
        f"; mean load {load['average']:.1f} on {load['cores']} cores: other work shared the machine, times are longer"
    )


def readme_lines(report: dict) -> list[str]:
    """The colab-sim block (docs/MEASUREMENTS.md, between README_START and README_END) from a report (both parts,
    each from its own run); tools/readme_results.py writes it from load_report()."""
    lines: list[str] = []
    sim = report.get("notebooks")
    if sim:
        lines += [
            "**Measured in the simulated Colab** "
            f"(`{sim['command']}`, {sim['date']}, this project's 2-core CPU machine; Python {sim['python']} and the "
            f"CPU torch {sim['seed']['torch']} stand in for Colab's Python 3.13 and torch {colab_freeze()['torch']}"
            f"{load_note(sim)}):",
            "",
        ]
        for name, run in sim["runs"].items():
            changes, outage = run["changes"], run["hub_outage"]
            lines.append(
                f"- `{name}`, uploaded alone into an empty folder: the two first cells took "
                f"{run['install_seconds']:.0f} s (unpacking the bundle and installing {len(changes['added'])} packages "
                f"Colab lacks, {'; '.join(changes['added'])}; "
                f"upgrading {len(changes['changed'])} it has: {'; '.join(changes['changed'])}). "
                "torch, numpy and triton did not move, and no torchvision or torchaudio (left out of the simulated "
                "image: the registry has only CUDA builds of them) and no `nvidia-*` package came in."
            )
            lines.append(
                "  During a hub outage (run cell by cell in a new kernel with `HF_HUB_OFFLINE` unset and no "
                f"`{OFFLINE_PACKAGE}`; this machine cannot reach the hub) every cell before code cell "
                f"{outage['code_cell']} ran, and that cell (`{outage['line']}`) stopped the notebook after "
                f"{outage['cell_seconds']:.1f} s ({outage['seconds']:.0f} s from the start) with "
                f'{outage["error"]}: "{outage["message"]}"'
            )
            lines.append(
                "  This machine cannot reach the hub, so the sim then installs the offline copy the error message "
                f"names (`{outage['offline_pin']}`, {run['offline_install_seconds']:.0f} s) and runs the notebook "
                "with `MODEL_SOURCE` auto falling back to it: it passed nbval in the smoke profile in "
                f"{run['nbval_seconds']:.0f} s, in a new kernel (as after *Restart session*)."
            )
        lines.append(
            "- All six install cells resolve for Python 3.13 on manylinux x86-64 with Colab's torch, torchvision, "
            "torchaudio, numpy and triton held (`pip install --dry-run --python-version 3.13 --only-binary=:all:`)."
        )
        sizes = ", ".join(f"{name[:2]}: {kb:.0f}" for name, kb in sim["bundle_kb"].items())
        lines.append(f"- Bundle cell size per notebook, KB: {sizes}.")
    t4 = report.get("t4")
    if t4:
        run, cells = t4["t4"], t4["t4"]["cells"]
        notebooks, gpu = run["report"]["notebooks"], run["report"]["environment"].get("gpu")
        each = "; ".join(
            f"`{name}` {'passed' if r['passed'] else 'FAILED'} in {r['seconds']:.0f} s"
            + (f" (peak {r['peak_memory_mb']:.0f} MB, {r['memory_kind']})" if r.get("peak_memory_mb") else "")
            for name, r in notebooks.items()
        )
        added_nbval = any(a.startswith("nbval==") for a in run["changes"]["added"])
        nbval = " and nbval" if added_nbval else "; nbval was there already, as the sim's venv has it"
        if not lines:
            lines += ["**Measured in the simulated Colab** (this project's 2-core CPU machine):", ""]
        lines.append(
            f"- `tests/colab_t4.ipynb` (`{t4['command']}`, {t4['date']}{load_note(t4)}), uploaded "
            + (
                f"into an empty folder of a fresh simulated Colab (built in {t4['venv_build_seconds']:.0f} s) beside "
                f"a zip of this working tree ({run['zip_kb']:.0f} KB, as `git archive --prefix=` makes one), `REPO` "
                f"left empty (it took the zip and unpacked it, {cells.get('fetch', 0):.0f} s)."
                if "zip_kb" in run  # earlier runs copied the working tree
                else f"alone into an empty folder of a fresh simulated Colab (built in {t4['venv_build_seconds']:.0f} "
                f"s) with `REPO` set to this working tree (copied, {cells.get('fetch', 0):.0f} s)."
            )
            + " Its install cell installed "
            f"{len(run['changes']['added'])} packages and upgraded {len(run['changes']['changed'])} "
            f"(the notebooks' pins{nbval}) in {cells.get('install', 0):.0f} s, keeping torch, numpy and triton; "
            f"the sim had installed `{t4['offline_pin']}` first, as this machine cannot reach the hub. Then each "
            "notebook alone in an empty folder under nbval, smoke profile, in a process of its own: "
            f"{each}; {run['report']['passed']} of {len(notebooks)} passed, {run['seconds']:.0f} s for the whole "
            f"notebook. It wrote its report as JSON and markdown; GPU: {gpu['name'] if gpu else 'none (CPU)'}."
        )
    lines.append(
        "- Not verifiable here: running on Python 3.13, Colab's CUDA wheels, a real T4, the hub model and datasets "
        "(`tests/colab_t4.ipynb` is for that, on a Colab account)."
    )
    return lines
