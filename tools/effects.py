"""The effect checks of tests/results in one table: what each measures in a notebook's results.json, and its bound.
It lives in tools/ because tools/spread.py measures the spread of these same numbers; tests/results and
tests/unit/test_effects.py import it from here (tools/ imports nothing from tests/).

Every bound lies outside the spread measured across seeds, torch thread counts and CPU kernel paths (tools/spread.py,
committed as data/reference/spread/smoke-cpu.json): a gain must reach about half the smallest gain measured, a harm
(forgetting) stay under a bound well above the largest measured. So a correct run passes on any machine, while a
run that does not train (a zero learning rate, frozen weights, a lost adapter) fails. DPO's reward accuracy on the
smoke profile's 20 pairs is left out (one pair is 5 points; it measured 0.6-0.7): its margin carries the effect.
tests/unit/test_effects.py checks each bound against that file, so a bound cannot be set inside the measured spread,
and a new check cannot go unmeasured; and against data/reference/spread/faults-smoke-cpu.json, the broken runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Run = dict[str, Any]


def drop(metric: dict[str, float]) -> float:
    return metric["before"] - metric["after"]


def rise(metric: dict[str, float]) -> float:
    return metric["after"] - metric["before"]


@dataclass(frozen=True)
class Effect:
    """One number read from a notebook's results.json and the bound it must meet: measure(run) >= bound when
    `at_least`, else measure(run) <= bound (a bound on harm, such as forgetting)."""

    notebook: str
    name: str
    measure: Callable[[Run], float]
    bound: float
    at_least: bool = True

    def holds(self, run: Run) -> bool:
        return self.holds_value(self.measure(run))

    def holds_value(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound

    def explain(self, run: Run) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{self.notebook}: {self.name} = {self.measure(run):.4f}, expected {sign} {self.bound}"


def _cold_start_format_gain(run: Run) -> float:
    return run["after_cold_start"]["heldout_format_rate"] - run["heldout_format_rate"]["before"]


def _real_word_gain(run: Run) -> float:
    words = run["probe_words"]
    return words["CPT"]["real_share"] - words["base model"]["real_share"]


def _real_distinct_gain(run: Run) -> float:
    """The sampled probes' real-word share times their distinct-word share, CPT over the base model: a loop of one
    real word is all real words but few distinct ones, so it cannot raise this (issue 37)."""
    words = run["probe_words"]
    return (words["CPT"]["real_share"] * words["CPT"]["distinct_share"]
            - words["base model"]["real_share"] * words["base model"]["distinct_share"])


def _signal_share(run: Run) -> float:
    return run["steps_with_reward_signal"] / run["steps"]


EFFECTS = [
    # 01: every weight trains at 2e-5; a zero rate moved the held-out loss by 0.0013 (faults-smoke-cpu.json).
    Effect("01_full_finetuning", "held-out loss drop", lambda r: drop(r["eval_loss"]), 0.14),
    # 02: the adapter trains and is applied at evaluation.
    Effect("02_lora_finetuning", "held-out loss drop", lambda r: drop(r["eval_loss"]), 0.04),
    # 03: the policy moves from the reference towards the chosen answers (before training every margin is 0).
    Effect("03_dpo_alignment", "held-out reward margin after", lambda r: r["heldout_reward_margin"]["after"], 0.003),
    # 04: the cold start teaches the format (a property that cannot flip on one problem), and GRPO moves the adapter
    # on groups whose rewards differ.
    Effect("04_grpo_reasoning", "format rate gain from the cold start", _cold_start_format_gain, 0.5),
    Effect("04_grpo_reasoning", "LoRA weight change during GRPO", lambda r: r["grpo_weight_change"], 1e-3),
    Effect("04_grpo_reasoning", "share of GRPO steps with a reward signal", _signal_share, 0.5),
    # 05: plain CPT and the extended vocabulary both learn Hindi; stage 1 moves the new rows; forgetting is bounded.
    Effect("05_cpt_hindi", "Hindi bits/char drop", lambda r: drop(r["hindi_bits_per_char"]), 0.35),
    Effect("05_cpt_hindi", "Hindi bits/char drop, extended vocabulary",
           lambda r: drop(r["extended_vocab"]["hindi_bits_per_char"]), 0.21),
    # ... and writes it: the share of real Hindi words (wordfreq's list) in the sampled probes rises over the base
    # model's
    Effect("05_cpt_hindi", "real-word share gain of the sampled probes", _real_word_gain, 0.09),
    # ... counted loop-aware (real share x distinct share), and the anti-repetition settings stop the greedy loops
    # (a count of 4 continuations: at most 0.5 means none).
    Effect("05_cpt_hindi", "real x distinct word share gain of the sampled probes", _real_distinct_gain, 0.08),
    Effect("05_cpt_hindi", "greedy probes that loop with ANTI_REPETITION, after CPT",
           lambda r: r["probes"]["after"]["anti_repetition_words"]["loops"], 0.5, False),
    Effect("05_cpt_hindi", "new rows' change in stage 1", lambda r: r["extended_vocab"]["stage1"]["new_rows_change"],
           0.004),
    Effect("05_cpt_hindi", "English bits/char rise", lambda r: rise(r["english_ood_bits_per_char"]), 0.05, False),
    Effect("05_cpt_hindi", "English bits/char rise, extended vocabulary",
           lambda r: rise(r["extended_vocab"]["english_ood_bits_per_char"]), 0.15, False),
    Effect("05_cpt_hindi", "chat loss rise", lambda r: rise(r["chat_eval_loss"]), 0.15, False),
    Effect("05_cpt_hindi", "chat loss rise, extended vocabulary",
           lambda r: rise(r["extended_vocab"]["chat_eval_loss"]), 0.15, False),
    # 06: held-out code gets cheaper; English and chat are not forgotten.
    Effect("06_cpt_code", "held-out bits/byte drop", lambda r: drop(r["heldout_bits_per_byte"]), 0.0025),
    Effect("06_cpt_code", "English bits/char rise", lambda r: rise(r["english_ood_bits_per_char"]), 0.05, False),
    Effect("06_cpt_code", "chat loss rise", lambda r: rise(r["chat_eval_loss"]), 0.15, False),
]
