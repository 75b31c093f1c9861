"""Where each notebook writes what it measured: runs/<notebook>/results.json, plots and saved models beside it."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helpers import ROOT as REPO_ROOT
from helpers import engine, runtime

REFERENCE = Path("data") / "reference"  # the committed reference runs, from the repository root
REFERENCE_DIR = REPO_ROOT / REFERENCE


def runs_root() -> Path:
    """The runs folder: $SMOL_RUNS_DIR, else runs/ at the repository root."""
    return Path(os.environ.get("SMOL_RUNS_DIR", REPO_ROOT / "runs")).expanduser()


def run_dir(notebook: str) -> Path:
    """runs/<notebook>/, created if needed."""
    path = runs_root() / notebook
    path.mkdir(parents=True, exist_ok=True)
    return path


def before_after(before: float, after: float, digits: int = 4) -> dict[str, float]:
    """A before/after metric in the shared shape {"before": x, "after": y}."""
    return {"before": round(float(before), digits), "after": round(float(after), digits)}


def save_results(notebook: str, results: dict[str, Any], folder: Path | None = None) -> Path:
    """Write results.json for a notebook into runs/<notebook>/ (or `folder`), replacing the previous one; return its
    path."""
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
    path = (run_dir(notebook) if folder is None else Path(folder)) / "results.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return path


def load_results(notebook: str) -> dict[str, Any] | None:
    """A notebook's results.json, or None when it has not run yet."""
    path = runs_root() / notebook / "results.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def load_reference(
    notebook: str, profile: str, gpu: bool | None = None, variant: str | None = None
) -> dict[str, Any] | None:
    """A committed reference run, data/reference/<notebook>/<profile>-<device>/results.json, of this profile.

    One measured on the same kind of device (GPU or CPU) as this machine comes first, and among those one of the
    engine this process runs (helpers.engine; references without "engine" ran on Unsloth), then one of the notebook's
    own settings before a "variant" (one knob changed, e.g. a second seed); its "reference" key names the file. With
    `variant` (e.g. "SEED = 2"), only that variant qualifies. None when no such reference is committed.
    """
    gpu = runtime.has_gpu() if gpu is None else gpu
    found = []
    for path in sorted((REFERENCE_DIR / notebook).glob("*/results.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        if run.get("profile") == profile and (variant is None or run.get("variant") == variant):
            found.append({**run, "reference": path.relative_to(REFERENCE_DIR.parent.parent).as_posix()})
    found.sort(key=lambda run: (str(run.get("device", "")).startswith("CPU") == gpu,
                                run.get("engine", "unsloth") != engine.name(), "variant" in run))
    return found[0] if found else None


DEVICE_SETTINGS = {"dtype", "bf16", "fp16", "use_cpu"}  # knobs that follow from the device, not from a choice


def settings_changed(run: dict[str, Any], ref: dict[str, Any]) -> list[str]:
    """The knobs two runs set differently (their results.json "settings"), as "seed 3407 -> 2" (this run's value,
    then the reference's); the device-driven ones (DEVICE_SETTINGS) are left out."""
    mine, theirs = run.get("settings", {}), ref.get("settings", {})
    return [f"{name} {mine.get(name)} -> {theirs.get(name)}" for name in sorted(set(mine) | set(theirs))
            if name not in DEVICE_SETTINGS and mine.get(name) != theirs.get(name)]


def reference_note(run: dict[str, Any]) -> str:
    """Two short lines: what this run was, and the committed reference of the same profile on the same device (the
    notebook's own settings, the same engine first) that it can be compared with, or that none is committed."""
    engine = run.get("engine", "unsloth")
    lines = [f"This run: {run['profile']} profile on {run['device']}, {engine} engine."]
    same = []
    for path in sorted((REFERENCE_DIR / run["notebook"]).glob("*/results.json")):
        ref = json.loads(path.read_text(encoding="utf-8"))
        if ref.get("profile") == run["profile"] and ref.get("device") == run["device"]:
            same.append((ref.get("engine", "unsloth") != engine, "variant" in ref, path.parent.name, ref))
    if not same:
        lines.append(f"No {run['profile']}-profile reference on this device is committed (data/reference/"
                     f"{run['notebook']}/): compare directions of change only.")
        return "\n".join(lines)
    _, _, folder, ref = min(same, key=lambda found: found[:3])
    changed = settings_changed(run, ref)
    if ref.get("train_data") != run.get("train_data"):
        verdict = f"trained on {ref.get('train_data')}, not on the same data: compare directions only"
    elif changed:
        verdict = f"other settings ({'; '.join(changed)}): compare how far each moved"
    elif ref.get("engine", "unsloth") != engine:
        verdict = f"the {ref.get('engine', 'unsloth')} engine: close, not identical"
    else:
        verdict = "comparable number for number"
    lines.append(f"Reference {folder} ({str(ref.get('measured', ''))[:10]}): {verdict}.")
    return "\n".join(lines)


def header(notebook: str, profile: str) -> dict[str, Any]:
    """The fields every results.json starts with: notebook, profile, device, environment, engine (and whether unsloth
    was imported), versions."""
    found = {
        "notebook": notebook,
        "profile": profile,
        "device": runtime.device_name(),
        "environment": runtime.environment(),
        "cpu": runtime.cpu_kernels(),
        **engine.describe(),
        "versions": runtime.versions(),
    }
    if runtime.emulated():
        found["emulated"] = runtime.emulated()
    return found


def series(log_history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one logged metric, e.g. 'loss', 'eval_loss' or 'rewards/margins'."""
    points = [(entry["step"], float(entry[key])) for entry in log_history if key in entry and "step" in entry]
    return [s for s, _ in points], [v for _, v in points]


def training_summary(log_history: list[dict[str, Any]], cost: Any, loss_key: str = "loss") -> dict[str, Any]:
    """Steps, passes over the training data (epochs, as the Trainer logs them), wall time and peak memory (a
    runtime.Measurement), first/last train loss and the loss curve."""
    steps, losses = series(log_history, loss_key)
    if not steps:
        raise ValueError(f"no {loss_key!r} in the log history: train with logging_steps=1")
    return {
        "steps": steps[-1],
        "epochs": round(max((float(row["epoch"]) for row in log_history if "epoch" in row), default=0.0), 3),
        "train": cost.as_dict(),
        "first_train_loss": round(losses[0], 4),
        "last_train_loss": round(losses[-1], 4),
        "loss_curve": {"step": steps, "loss": [round(v, 4) for v in losses]},
    }


NOT_SETTINGS = ("NOTEBOOK", "PROFILE", "OUT", "SETTINGS", "RESULTS", "PINS", "NO_DEPS")


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a setting, or None when it is not a plain value (a model, a function, a path...)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return None if any(i is None and v is not None for i, v in zip(items, value)) else items
    if isinstance(value, Mapping):
        items = {str(k): _plain(v) for k, v in value.items()}
        return None if any(items[str(k)] is None and v is not None for k, v in value.items()) else items
    if type(value).__module__ == "torch" and type(value).__name__ == "dtype":
        return str(value)
    return None


def settings_of(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The knobs of a notebook: every UPPER_CASE name in `namespace` (pass `globals()` at the end of the Settings cell)
    whose value is plain data, by its lower-case name. NOT_SETTINGS (bookkeeping and the install cell's pins) are
    left out."""
    found = {}
    for name, value in namespace.items():
        if not name.isupper() or name.startswith("_") or name in NOT_SETTINGS or callable(value):
            continue
        plain = _plain(value)
        if plain is not None or value is None:
            found[name.lower()] = plain
    return found


def _before_afters(value: Any) -> Any:
    """(before, after) pairs of numbers anywhere in dicts become {"before": x, "after": y}."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return before_after(*value)
    if isinstance(value, dict):
        return {k: _before_afters(v) for k, v in value.items()}
    return value


def record(notebook: str, profile: str, settings: Mapping[str, Any], *, log_history: list[dict[str, Any]] | None = None,
           cost: Any = None, loss_key: str = "loss", folder: Path | None = None, **measured: Any) -> dict[str, Any]:
    """Assemble, save and summarise a notebook's results.json in one call.

    It holds the header (device, versions), `settings` (see settings_of), the training summary of `log_history`
    and `cost` when given, and every keyword in `measured`; a (before, after) tuple of numbers, at any depth of
    dicts, is stored as {"before": x, "after": y}. It goes to runs/<notebook>/ (a recipe passes its own `folder`).
    Prints where the file went, how it compares with the committed
    references, and each before -> after.
    """
    run: dict[str, Any] = {**header(notebook, profile), "settings": dict(settings)}
    if log_history is not None:
        run.update(training_summary(log_history, cost, loss_key=loss_key))
    run.update(_before_afters(measured))
    print("saved", save_results(notebook, run, folder))
    if folder is None:  # a recipe's run has its own settings: the notebook's references do not compare
        print(reference_note(run))
    for name, pair in headline_metrics(run).items():
        print(f"  {name}: {pair['before']} -> {pair['after']}")
    return run


COMPARED = (
    ("device", lambda r: r["device"]),
    ("profile", lambda r: r["profile"]),
    ("engine", lambda r: r.get("engine", "unsloth")),  # references from before the plain engine all used Unsloth
    ("trained on", lambda r: r.get("train_data", "?")),
    ("trainable parameters", lambda r: f"{r['params']['trainable']:,}"),
    ("trainable share (%)", lambda r: r["params"]["trainable_percent"]),
    ("optimizer steps", lambda r: r["steps"]),
    ("training wall time (s)", lambda r: r["train"]["seconds"]),
    ("peak memory (MB)", lambda r: f"{r['train']['peak_memory_mb']} ({r['train']['memory_kind']})"),
    ("first train loss", lambda r: r["first_train_loss"]),
    ("last train loss", lambda r: r["last_train_loss"]),
    ("held-out loss before", lambda r: r["eval_loss"]["before"]),
    ("held-out loss after", lambda r: r["eval_loss"]["after"]),
    ("fact questions right after", lambda r: (f"{r['fact_flips']['right_after']} of {r['fact_flips']['items']}"
                                              if "fact_flips" in r else "(not measured)")),
)


def comparison_table(runs: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Rows of metric | run A | run B ... from results.json contents; a run that is None shows '(not run)'."""
    rows = []
    for metric, get in COMPARED:
        row: dict[str, Any] = {"metric": metric}
        for name, run in runs.items():
            row[name] = "(not run)" if run is None else get(run)
        rows.append(row)
    return rows


def headline_metrics(run: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Every before/after metric in a results.json (top level and one level down), by name."""
    found = {}
    for key, value in run.items():
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            found[key] = value
        elif isinstance(value, dict):
            for sub, inner in value.items():
                if isinstance(inner, dict) and set(inner) == {"before", "after"}:
                    found[f"{key}.{sub}"] = inner
    return found
