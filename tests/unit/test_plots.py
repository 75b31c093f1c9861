import pytest

from helpers import plots, results

LOG = [
    {"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}, {"eval_loss": 1.8, "step": 2},
    {"loss": 1.2, "step": 3, "rewards/margins": 0.3}, {"train_runtime": 3.0, "step": 3},
]


def test_series_picks_one_metric():
    assert results.series(LOG, "loss") == ([1, 2, 3], [2.0, 1.5, 1.2])
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
    curves = {"a": {"step": [1, 2], "loss": [2.0, 1.0]}, "b": {"step": [1, 2], "loss": [2.0, 1.5]}}
    fig = plots.plot_curves(curves, tmp_path / "c.png")
    assert [line.get_label() for line in fig.axes[0].lines] == ["a", "b"]
    bars = {"Hindi": {"before": 3.0, "after": 2.0}, "English": {"before": 1.0, "after": 1.1}}
    fig = plots.plot_bars(bars, tmp_path / "b.png")
    assert len(fig.axes[0].patches) == 4 and (tmp_path / "b.png").exists()


def test_bars_can_carry_labelled_reference_lines():
    fig = plots.plot_bars({"accuracy": {"before": 0.4, "after": 0.5}}, lines={"pass@8": 0.7})
    (line,) = fig.axes[0].get_lines()
    assert list(line.get_ydata()) == [0.7, 0.7]
    assert "pass@8: 0.7" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_bars_take_one_colour_per_series():
    from matplotlib.colors import to_rgba

    flips = {"A -> B": {"gained": 5, "lost": 2}, "A -> C": {"gained": 1, "lost": 3}}
    fig = plots.plot_bars(flips, colors=["tab:green", "tab:red"])
    assert [p.get_facecolor() for p in fig.axes[0].patches] == [to_rgba("tab:green")] * 2 + [to_rgba("tab:red")] * 2


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


def test_plot_paired_puts_one_point_per_item_against_the_diagonal(tmp_path):
    fig = plots.plot_paired([1.0, 2.0, 3.0], [0.8, 2.5, 2.0], tmp_path / "p.png", label="bits per byte")
    ax = fig.axes[0]
    assert len(ax.collections[0].get_offsets()) == 3 and (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    (diagonal,) = ax.get_lines()
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata())
    assert "2 lower after training, 1 higher" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert ax.get_xlabel() == "before (bits per byte)"
    with pytest.raises(ValueError, match="same"):
        plots.plot_paired([1.0], [1.0, 2.0])


def tiny_lora_model(r=2):
    """A 2-layer Llama with grouped-query attention (4 query heads, 2 key/value heads) and LoRA on q_proj and v_proj."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2,
    )
    return get_peft_model(
        LlamaForCausalLM(config), LoraConfig(r=r, lora_alpha=4 * r, target_modules=["q_proj", "v_proj"])
    )


def test_plot_lora_update_draws_a_b_and_their_product(tmp_path):
    import torch

    model = tiny_lora_model(r=2)
    q = model.base_model.model.model.layers[0].self_attn.q_proj
    with torch.no_grad():  # B starts at zero; give it values so that delta W is not zero
        q.lora_B["default"].weight.copy_(torch.randn(16, 2))
    fig = plots.plot_lora_update(model, "layers.0.self_attn.q_proj", tmp_path / "lora.png")
    assert (tmp_path / "lora.png").read_bytes()[:4] == b"\x89PNG"
    shapes = [ax.images[0].get_array().shape for ax in fig.axes if ax.images]
    assert shapes == [(2, 16), (16, 2), (16, 16)]  # A, B, delta W
    titles = " ".join(ax.get_title() for ax in fig.axes)
    assert "rank 2 (at most r = 2)" in titles and "delta W = 4 * B @ A" in titles  # scaling alpha / r = 8 / 2
    untrained = plots.plot_lora_update(model, "layers.1.self_attn.v_proj")  # B still zero: no update yet
    assert "rank 0" in " ".join(ax.get_title() for ax in untrained.axes)
    with pytest.raises(ValueError, match="2 LoRA modules match"):
        plots.plot_lora_update(model, "q_proj")


def test_dpo_loss_curve_is_log2_at_zero_and_falls_faster_with_larger_beta():
    import math

    losses, weights = plots.dpo_loss_curve(0.1, [-10.0, 0.0, 10.0, 1000.0])
    assert losses[1] == pytest.approx(math.log(2)) and weights[1] == pytest.approx(0.5)
    assert losses[0] > losses[1] > losses[2] > losses[3] >= 0 and weights[0] > weights[1] > weights[2] > weights[3] >= 0
    assert losses[2] == pytest.approx(-math.log(1 / (1 + math.exp(-1.0))))  # beta * d = 1
    assert plots.dpo_loss_curve(0.5, [10.0])[0][0] < plots.dpo_loss_curve(0.1, [10.0])[0][0]
    assert plots.dpo_loss_curve(0.1, [-1000.0])[0][0] == pytest.approx(100.0)  # no overflow far on the wrong side


def test_plot_dpo_loss_one_curve_per_beta_in_both_panels(tmp_path):
    fig = plots.plot_dpo_loss([0.05, 0.1, 0.5], tmp_path / "dpo.png")
    assert (tmp_path / "dpo.png").read_bytes()[:4] == b"\x89PNG"
    left, right = fig.axes
    assert [line.get_label() for line in right.get_lines()][:3] == ["β = 0.05", "β = 0.1", "β = 0.5"]
    first = left.get_lines()[0]
    zero = list(first.get_xdata()).index(0.0)
    assert first.get_ydata()[zero] == pytest.approx(0.6931, abs=1e-4)
    with pytest.raises(ValueError, match="beta"):
        plots.plot_dpo_loss([])


def test_plot_pair_rewards_counts_pairs_below_the_line_per_kind(tmp_path):
    per_pair = [{"kind": "a", "chosen": 0.1, "rejected": -0.3}, {"kind": "a", "chosen": -0.2, "rejected": 0.0},
                {"kind": "b", "chosen": -0.1, "rejected": -0.4}]
    fig = plots.plot_pair_rewards(per_pair, tmp_path / "pairs.png", title="after")
    ax = fig.axes[0]
    assert (tmp_path / "pairs.png").exists() and [len(c.get_offsets()) for c in ax.collections[1:]] == [2, 1]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "a: 1 of 2 below" in labels and "b: 1 of 1 below" in labels
    assert ax.get_xlabel() == "implicit reward of the chosen answer"
    with pytest.raises(ValueError, match="no pairs"):
        plots.plot_pair_rewards([])


def test_plot_group_draws_rewards_with_their_mean_and_signed_advantages(tmp_path):
    fig = plots.plot_group([4.0, 2.0, 2.0, 2.0], [1.5, -0.5, -0.5, 0.0], tmp_path / "g.png", title="one group")
    left, right = fig.axes
    assert [p.get_height() for p in left.patches] == [4.0, 2.0, 2.0, 2.0]
    (mean_line,) = left.get_lines()
    assert list(mean_line.get_ydata()) == [2.5, 2.5]
    colors = [p.get_facecolor() for p in right.patches]
    assert colors[0] != colors[1] and colors[1] == colors[2] and colors[3] not in (colors[0], colors[1])
    assert (tmp_path / "g.png").exists()
    with pytest.raises(ValueError, match="same, non-zero length"):
        plots.plot_group([1.0], [0.0, 0.0])
