"""Training curves from a Trainer's log history, shown inline and saved as PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

if matplotlib.get_backend().lower() == "agg" or not matplotlib.get_backend():
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from helpers.models import lora_factors  # noqa: E402
from helpers.results import series  # noqa: E402


def _finish(fig: plt.Figure, path: str | Path | None, title: str = "") -> plt.Figure:
    """Title, tight layout, and a PNG at `path` when one is given."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig

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
    return _finish(fig, path, title)


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
    return _finish(fig, path)


def plot_bars(
    values: dict[str, dict[str, float]],
    path: str | Path | None = None,
    title: str = "",
    ylabel: str = "",
    lines: dict[str, float] | None = None,
    colors: list[str] | None = None,
) -> plt.Figure:
    """Grouped bars, e.g. {"Hindi": {"before": 3.1, "after": 2.4}, "English": {...}}; `lines` adds labelled dashed
    horizontal lines, e.g. {"pass@8": 0.7}; `colors`, one per series, replaces matplotlib's default cycle."""
    groups = list(values)
    series_names = list(next(iter(values.values())))
    fig, ax = plt.subplots(figsize=(3.8 + 1.6 * len(groups), 3.6))
    width = 0.8 / len(series_names)
    for i, name in enumerate(series_names):
        xs = [g + i * width for g in range(len(groups))]
        color = colors[i] if colors else None
        bars = ax.bar(xs, [values[g][name] for g in groups], width, label=name, color=color)
        ax.bar_label(bars, fmt="%.3g", fontsize=8)
    for (label, y), color in zip((lines or {}).items(), ("0.3", "tab:red", "tab:purple")):
        ax.axhline(y, linestyle="--", linewidth=1, color=color, label=f"{label}: {y:.3g}")
    ax.set_xticks([g + width * (len(series_names) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.12)  # room for the bar labels
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars, never over them
    return _finish(fig, path)


def plot_curves(
    curves: dict[str, dict[str, list[float]]], path: str | Path | None = None, title: str = "", ylabel: str = "loss"
) -> plt.Figure:
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
    return _finish(fig, path)


def plot_paired(
    before: list[float], after: list[float], path: str | Path | None = None, title: str = "", label: str = ""
) -> plt.Figure:
    """One point per item (x: before, y: after), e.g. the bits per byte of each held-out text, with the line
    after = before: points under it went down with training. The legend counts the points under and over the line."""
    if len(before) != len(after) or not before:
        raise ValueError(
            f"before and after need the same, non-zero number of values (got {len(before)} and {len(after)})"
        )
    low, high = min(before + after), max(before + after)
    pad = 0.05 * (high - low or 1.0)
    lower = sum(a < b for b, a in zip(before, after))
    higher = sum(a > b for b, a in zip(before, after))
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="0.5", linewidth=1, label="after = before")
    ax.scatter(before, after, s=18, alpha=0.7, label=f"{lower} lower after training, {higher} higher")
    suffix = f" ({label})" if label else ""
    ax.set_xlabel("before" + suffix)
    ax.set_ylabel("after" + suffix)
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _finish(fig, path)


def plot_lora_update(model: Any, module_name: str, path: str | Path | None = None) -> plt.Figure:
    """LoRA's update of one projection of a PEFT model as heatmaps laid out like the product: A (r x d_in) on top,
    B (d_out x r) on the left, delta W = (alpha / r) * B @ A (d_out x d_in) beside B, with each matrix's size in
    numbers and the rank of delta W in the titles. Panels are not to scale: r is much smaller than d_in and d_out."""
    import torch

    f = lora_factors(model, module_name)
    a, b, delta = f["A"], f["B"], f["delta"]
    r, d_in, d_out = a.shape[0], a.shape[1], b.shape[0]
    rank = int(torch.linalg.matrix_rank(delta)) if delta.abs().max() > 0 else 0
    ratio = float(delta.norm() / f["W"].norm())
    fig = plt.figure(figsize=(9.0, 7.0))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 4], height_ratios=[1, 4], wspace=0.55, hspace=0.45)
    panels = (
        (grid[0, 1], a, f"A: r x d_in = {r} x {d_in} ({a.numel():,} numbers)"),
        (grid[1, 0], b, f"B: d_out x r\n= {d_out} x {r}\n({b.numel():,})"),
        (grid[1, 1], delta, f"delta W = {f['scaling']:g} * B @ A: {d_out} x {d_in} ({delta.numel():,} numbers)\n"
                            f"rank {rank} (at most r = {r}); ||delta W|| / ||W|| = {ratio:.2g}"),
    )
    for spec, matrix, title in panels:
        ax = fig.add_subplot(spec)
        limit = float(matrix.abs().max()) or 1.0
        image = ax.imshow(
            matrix.numpy(), cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest"
        )
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02).ax.tick_params(labelsize=7)
    note = fig.add_subplot(grid[0, 0])
    note.axis("off")
    note.text(
        0,
        0.5,
        f"{module_name}\ntrained: A + B =\n{a.numel() + b.numel():,} numbers\ninstead of {delta.numel():,}",
        fontsize=8,
        va="center",
    )
    fig.suptitle("LoRA: the update of one weight matrix is the product of two thin ones")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def dpo_loss_curve(beta: float, logratio_margins: list[float]) -> tuple[list[float], list[float]]:
    """DPO's loss -log sigmoid(beta * d) and its gradient weight sigmoid(-beta * d) at each log-ratio margin
    d = (log pi - log ref)(chosen) - (log pi - log ref)(rejected), in nats."""
    losses = [math.log1p(math.exp(-beta * d)) if beta * d > -30 else -beta * d for d in logratio_margins]
    weights = [1.0 / (1.0 + math.exp(beta * d)) if beta * d < 30 else 0.0 for d in logratio_margins]
    return losses, weights


def plot_dpo_loss(
    betas: list[float], path: str | Path | None = None, span: tuple[float, float] = (-10.0, 40.0)
) -> plt.Figure:
    """Two panels over the log-ratio margin d (nats), one curve per beta: DPO's loss -log sigmoid(beta * d), and the
    weight sigmoid(-beta * d) that scales each pair's gradient (how hard a pair still pushes)."""
    if not betas:
        raise ValueError("give at least one beta, e.g. [0.05, 0.1, 0.5]")
    steps = 200
    xs = [span[0] + (span[1] - span[0]) * i / steps for i in range(steps + 1)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10.0, 3.6))
    for beta in betas:
        losses, weights = dpo_loss_curve(beta, xs)
        left.plot(xs, losses, label=f"β = {beta:g}")
        right.plot(xs, weights, label=f"β = {beta:g}")
    left.axhline(math.log(2), linestyle=":", color="0.4", linewidth=1)
    left.annotate("log 2 ≈ 0.693 at d = 0 (policy = reference)", (0.0, math.log(2)), xytext=(6, 6),
                  textcoords="offset points", fontsize=8)
    left.set_ylim(0.0, 1.4)  # the wrong-way side (d < 0) climbs steeply at large beta
    for ax, title, ylabel in ((left, "DPO loss  −log σ(β·d)", "loss"),
                              (right, "gradient weight  σ(−β·d): how hard a pair still pushes", "weight")):
        ax.axvline(0.0, color="0.6", linewidth=1)
        ax.set_xlabel("d = chosen's log-ratio − rejected's (nats) = margin / β")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _finish(fig, path)


def plot_pair_rewards(per_pair: list[dict[str, Any]], path: str | Path | None = None, title: str = "") -> plt.Figure:
    """One point per preference pair (x: implicit reward of the chosen answer, y: of the rejected one), coloured by
    its "kind", with the line chosen = rejected: points below it are pairs the model ranks the right way round.
    The legend counts them per kind. per_pair: evaluation.preference_metrics(...)["per_pair"]."""
    if not per_pair:
        raise ValueError("no pairs to plot")
    values = [v for p in per_pair for v in (p["chosen"], p["rejected"])]
    low, high = min(values + [0.0]), max(values + [0.0])
    pad = 0.08 * (high - low or 1.0)
    low, high = low - pad, high + pad
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.fill_between(
        [low, high], [low, low], [low, high], color="tab:green", alpha=0.07, label="below the line: chosen wins"
    )
    ax.plot([low, high], [low, high], "--", color="0.5", linewidth=1, label="chosen = rejected")
    for kind in sorted({p["kind"] for p in per_pair}):
        points = [p for p in per_pair if p["kind"] == kind]
        wins = sum(p["chosen"] > p["rejected"] for p in points)
        ax.scatter([p["chosen"] for p in points], [p["rejected"] for p in points], s=24, alpha=0.8,
                   label=f"{kind}: {wins} of {len(points)} below")
    ax.axhline(0.0, color="0.75", linewidth=0.8)
    ax.axvline(0.0, color="0.75", linewidth=0.8)
    ax.set_xlim(low, high)
    ax.set_ylim(low, high)
    ax.set_aspect("equal")
    ax.set_xlabel("implicit reward of the chosen answer")
    ax.set_ylabel("implicit reward of the rejected answer")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _finish(fig, path)


def plot_group(
    rewards: list[float], advantages: list[float], path: str | Path | None = None, title: str = ""
) -> plt.Figure:
    """One GRPO group, completion by completion: the summed reward (left, with the group mean dashed) and the
    group-relative advantage (right: green above 0 = made more likely, red below 0 = made less likely, grey = 0)."""
    if len(rewards) != len(advantages) or not rewards:
        raise ValueError(
            f"rewards and advantages need the same, non-zero length (got {len(rewards)} and {len(advantages)})"
        )
    xs = list(range(1, len(rewards) + 1))
    mean = sum(rewards) / len(rewards)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    left.bar(xs, rewards, color="tab:blue")
    left.axhline(mean, linestyle="--", color="0.3", linewidth=1, label=f"group mean {mean:.3g}")
    left.set_title("reward (sum of the reward functions)")
    left.legend(fontsize=8)
    colors = ["tab:green" if a > 0 else "tab:red" if a < 0 else "0.6" for a in advantages]
    right.bar(xs, advantages, color=colors)
    right.axhline(0, color="0.3", linewidth=1)
    right.set_title("advantage = (reward - mean) / std")
    for ax in (left, right):
        ax.set_xlabel("completion")
        ax.set_xticks(xs)
        ax.grid(alpha=0.3, axis="y")
    return _finish(fig, path, title)
