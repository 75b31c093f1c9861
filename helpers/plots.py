"""Training curves from a Trainer's log history, shown inline and saved as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

if matplotlib.get_backend().lower() == "agg" or not matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def series(log_history: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of one logged metric, e.g. 'loss', 'eval_loss' or 'rewards/margins'."""
    points = [(entry["step"], float(entry[key])) for entry in log_history if key in entry and "step" in entry]
    return [s for s, _ in points], [v for _, v in points]


def running_mean(values: list[float], window: int) -> list[float]:
    """Mean of the last `window` values at each point (fewer at the start)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def _step_axis(ax: plt.Axes) -> None:
    """Label the x axis 'step' and tick it at whole steps only."""
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_metrics(
    log_history: list[dict[str, Any]],
    keys: list[str],
    path: str | Path | None = None,
    title: str = "",
    ncols: int = 3,
    smooth: int = 0,
) -> plt.Figure:
    """One small panel per metric over training steps; saved to `path` when given. Missing keys are skipped.
    `smooth` > 1 draws the raw values faintly and their running mean over that many steps on top (noisy RL curves)."""
    present = [k for k in keys if series(log_history, k)[0]]
    if not present:
        raise ValueError(f"none of {keys} was logged; logged keys: {sorted({k for e in log_history for k in e})}")
    ncols = min(ncols, len(present))
    nrows = -(-len(present) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, present):
        steps, values = series(log_history, key)
        if smooth > 1 and len(values) > smooth:
            ax.plot(steps, values, color="tab:blue", alpha=0.3, linewidth=1, label="per step")
            ax.plot(steps, running_mean(values, smooth), color="tab:blue", linewidth=2, label=f"mean of last {smooth}")
            ax.legend(fontsize=7)
        else:
            ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3)
        ax.set_title(key)
        _step_axis(ax)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_losses(log_history: list[dict[str, Any]], path: str | Path | None = None, title: str = "") -> plt.Figure:
    """Training loss (and eval loss when logged) on one axis."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for key, style in (("loss", "-"), ("eval_loss", "o--")):
        steps, values = series(log_history, key)
        if steps:
            ax.plot(steps, values, style, label=key.replace("loss", "loss (train)") if key == "loss" else key)
    if not ax.lines:
        raise ValueError("no 'loss' in the log history: did training run with logging_steps set?")
    _step_axis(ax)
    ax.set_ylabel("loss")
    ax.set_title(title or "Training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_bars(
    values: dict[str, dict[str, float]], path: str | Path | None = None, title: str = "", ylabel: str = "", lines: dict[str, float] | None = None
) -> plt.Figure:
    """Grouped bars, e.g. {"Hindi": {"before": 3.1, "after": 2.4}, "English": {...}}; `lines` adds labelled dashed
    horizontal lines, e.g. {"pass@8": 0.7}."""
    groups = list(values)
    series_names = list(next(iter(values.values())))
    fig, ax = plt.subplots(figsize=(3.8 + 1.6 * len(groups), 3.6))
    width = 0.8 / len(series_names)
    for i, name in enumerate(series_names):
        xs = [g + i * width for g in range(len(groups))]
        bars = ax.bar(xs, [values[g][name] for g in groups], width, label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
    for (label, y), color in zip((lines or {}).items(), ("0.3", "tab:red", "tab:purple")):
        ax.axhline(y, linestyle="--", linewidth=1, color=color, label=f"{label}: {y:.3g}")
    ax.set_xticks([g + width * (len(series_names) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.12)  # room for the bar labels
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars, never over them
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_curves(curves: dict[str, dict[str, list[float]]], path: str | Path | None = None, title: str = "", ylabel: str = "loss") -> plt.Figure:
    """Several saved curves ({"step": [...], "loss": [...]}) on one axis, e.g. two runs' training loss."""
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for name, curve in curves.items():
        values = [v for k, v in curve.items() if k != "step"][0]
        ax.plot(curve["step"], values, label=name)
    _step_axis(ax)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
