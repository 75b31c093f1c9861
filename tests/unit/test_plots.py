import pytest

from helpers import plots

LOG = [
    {"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}, {"eval_loss": 1.8, "step": 2},
    {"loss": 1.2, "step": 3, "rewards/margins": 0.3}, {"train_runtime": 3.0, "step": 3},
]


def test_series_picks_one_metric():
    assert plots.series(LOG, "loss") == ([1, 2, 3], [2.0, 1.5, 1.2])
    assert plots.series(LOG, "eval_loss") == ([2], [1.8])
    assert plots.series(LOG, "missing") == ([], [])


def test_plot_losses_saves_a_png(tmp_path):
    fig = plots.plot_losses(LOG, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert [line.get_label() for line in fig.axes[0].lines] == ["loss (train)", "eval_loss"]
    with pytest.raises(ValueError, match="no 'loss'"):
        plots.plot_losses([{"step": 1, "other": 1.0}])


def test_plot_metrics_one_panel_per_present_key(tmp_path):
    fig = plots.plot_metrics(LOG, ["loss", "rewards/margins", "absent"], tmp_path / "m.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["loss", "rewards/margins"]
    with pytest.raises(ValueError, match="logged keys"):
        plots.plot_metrics(LOG, ["absent"])


def test_plot_curves_and_bars(tmp_path):
    fig = plots.plot_curves({"a": {"step": [1, 2], "loss": [2.0, 1.0]}, "b": {"step": [1, 2], "loss": [2.0, 1.5]}}, tmp_path / "c.png")
    assert [line.get_label() for line in fig.axes[0].lines] == ["a", "b"]
    fig = plots.plot_bars({"Hindi": {"before": 3.0, "after": 2.0}, "English": {"before": 1.0, "after": 1.1}}, tmp_path / "b.png")
    assert len(fig.axes[0].patches) == 4 and (tmp_path / "b.png").exists()


def test_bars_can_carry_labelled_reference_lines():
    fig = plots.plot_bars({"accuracy": {"before": 0.4, "after": 0.5}}, lines={"pass@8": 0.7})
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == [0.7, 0.7]
    assert "pass@8: 0.7" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_step_axes_have_whole_number_ticks():
    fig = plots.plot_metrics(LOG, ["loss"])
    fig.canvas.draw()
    ticks = fig.axes[0].get_xticks()
    assert len(ticks) > 1 and all(float(t).is_integer() for t in ticks)


def test_running_mean_and_smoothed_panels():
    assert plots.running_mean([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]
    log = [{"step": i, "reward": float(i % 2)} for i in range(1, 21)]
    fig = plots.plot_metrics(log, ["reward"], smooth=5)
    raw, smoothed = fig.axes[0].get_lines()
    assert list(raw.get_ydata()) == [float(i % 2) for i in range(1, 21)]
    assert abs(smoothed.get_ydata()[-1] - 0.4) < 1e-9  # steps 16-20: 0, 1, 0, 1, 0
