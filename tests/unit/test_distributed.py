"""recipes/distributed.py: what a recipe reads from its launcher, which engine it may use, what each rank trained on.
The launches themselves (two processes over gloo) are in tests/recipes/."""

from __future__ import annotations

import pytest
import torch

from helpers import ROOT
from recipes import distributed


def test_launch_reads_torchrun_and_accelerate_variables():
    assert distributed.launch({}) == distributed.Launch(rank=0, local_rank=0, world_size=1, kind="single", cpu=False)
    ddp = distributed.launch({"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "4"})
    assert (ddp.rank, ddp.local_rank, ddp.world_size, ddp.kind, ddp.main) == (3, 1, 4, "ddp", False)
    zero = distributed.launch({"WORLD_SIZE": "2", "ACCELERATE_USE_DEEPSPEED": "true"})
    assert zero.kind == "deepspeed" and zero.main
    assert distributed.launch({"WORLD_SIZE": "2", "ACCELERATE_USE_FSDP": "1"}).kind == "fsdp"
    assert distributed.launch({"ACCELERATE_USE_CPU": "True"}).cpu
    assert not distributed.launch({"ACCELERATE_USE_CPU": "false"}).cpu


def test_unsloth_fits_one_gpu_and_ddp_only():
    one, ddp = distributed.launch({}), distributed.launch({"WORLD_SIZE": "2"})
    assert distributed.unsloth_fits(one, has_cuda=True) is None
    assert distributed.unsloth_fits(ddp, has_cuda=True) is None
    assert "NVIDIA GPU" in distributed.unsloth_fits(one, has_cuda=False)
    assert "NVIDIA GPU" in distributed.unsloth_fits(distributed.launch({"ACCELERATE_USE_CPU": "1"}), has_cuda=True)
    for kind in ("DEEPSPEED", "FSDP"):
        run = distributed.launch({"WORLD_SIZE": "2", f"ACCELERATE_USE_{kind}": "true"})
        assert kind.lower() in distributed.unsloth_fits(run, has_cuda=True)


def test_command_line_adds_what_the_device_needs_unless_given():
    def flags(argv, **device):
        return distributed.command_line(argv, processes=1, **device)

    assert flags(["--max_steps", "3"], device="cpu") == ["--max_steps", "3", "--use_cpu", "true"]
    assert flags(["--use_cpu", "false"], device="cpu") == ["--use_cpu", "false"]
    assert flags(["--use_cpu=false"], device="cpu") == ["--use_cpu=false"]
    assert flags(["--max_steps", "3"], device="mps") == ["--max_steps", "3"]
    assert flags([], device="cuda", bf16_ok=True) == []  # TRL's bf16 default stands
    assert flags([], device="cuda", bf16_ok=False) == ["--fp16", "true"]  # a T4
    assert flags(["--bf16", "false"], device="cuda", bf16_ok=False) == ["--bf16", "false"]
    assert flags(["--fp16=false"], device="cuda", bf16_ok=False) == ["--fp16=false"]


def test_each_process_accumulates_its_share_of_the_one_process_accumulation():
    config = ["--config", str(ROOT / "recipes" / "configs" / "sft_lora.yaml")]  # 8 per device x 2 steps: 16
    share = distributed.per_process_accumulation
    assert share(config, 1) == config  # one process: the config's 2 as it is
    assert share(config, 2)[-2:] == ["--gradient_accumulation_steps", "1"]  # 8 x 1 x 2 processes = 16
    assert share([*config, "--gradient_accumulation_steps", "8"], 4)[-1] == "2"  # the command line's 8, over four
    assert share(["--gradient_accumulation_steps=6"], 3)[-1] == "2"
    assert distributed.command_line(config, device="mps", processes=2)[-1] == "1"
    with pytest.raises(ValueError, match="2 \\(for one process\\) does not divide among 4 processes"):
        share(config, 4)
    assert distributed.flag_value(["--a", "1", "--a=2"], "--a") == "2" and distributed.flag_value([], "--a") is None


def documented_launches() -> list[tuple[str, list[str]]]:
    """Every `accelerate launch ... recipes/<name>.py <args>` command the notebooks and READMEs show: (where, args)."""
    import json
    import re
    import shlex

    pages = [ROOT / "README.md", ROOT / "recipes" / "README.md"]
    texts = [(page.name, page.read_text(encoding="utf-8")) for page in pages]
    for notebook in sorted((ROOT / "notebooks").glob("0*.ipynb")):
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        texts += [(notebook.name, "".join(c["source"])) for c in cells if c["cell_type"] == "markdown"]
    found = []
    for where, text in texts:
        for command in re.findall(r"accelerate launch (?:\\\n|[^\n`])+", text):
            words = shlex.split(command.replace("\\\n", " "), comments=True)
            recipe = next((i for i, w in enumerate(words) if w.startswith("recipes/") and w.endswith(".py")), None)
            if recipe is not None:  # not prose such as "`accelerate launch --cpu --num_processes 2` starts one process"
                found.append((where, words[recipe + 1:]))
    return found


def test_every_documented_launch_keeps_its_effective_batch_on_two_processes():
    # A command a student copies must not stop on the split (it did, when the notebooks still passed
    # --gradient_accumulation_steps 1 for two processes after the recipes learned to divide it themselves).
    launches = documented_launches()
    assert {where for where, _ in launches} >= {"README.md", "01_full_finetuning.ipynb", "04_grpo_reasoning.ipynb"}
    for where, args in launches:
        with_config = [(ROOT / a).as_posix() if a.endswith(".yaml") else a for a in args]
        assert distributed.per_process_accumulation(with_config, 2)[-1] == "1", (where, args)


def test_effective_batch_and_the_launch_record():
    assert distributed.effective_batch(8, 2, 1) == distributed.effective_batch(8, 1, 2) == 16
    record = distributed.launch_record(distributed.launch({"WORLD_SIZE": "2"}), 8, 1)
    assert record == {"kind": "ddp", "processes": 2, "per_device_batch": 8, "gradient_accumulation_steps": 1,
                      "effective_batch": 16}


def test_rank_counter_counts_rows_tokens_and_fingerprints_without_padding():
    def collate(features):
        width = max(len(f) for f in features)
        ids = torch.tensor([f + [0] * (width - len(f)) for f in features])
        mask = torch.tensor([[1] * len(f) + [0] * (width - len(f)) for f in features])
        return {"input_ids": ids, "attention_mask": mask}

    counter = distributed.RankCounter(collate)
    batch = counter([[5, 6, 7], [8]])
    assert batch["input_ids"].shape == (2, 3)  # the wrapped collator's batch, unchanged
    counter([[9, 9]])
    report = counter.report(rank=1, peak_memory_mb=123.456)
    assert (report["rank"], report["batches"], report["rows"], report["tokens"]) == (1, 2, 3, 6)
    assert report["peak_memory_mb"] == 123.5 and "peak_memory_mb" not in counter.report(rank=1)
    # padding does not change a row's fingerprint: [8] padded to [8, 0, 0] is still [8]
    assert report["row_digests"] == [distributed.row_digest(r) for r in ([5, 6, 7], [8], [9, 9])]
    assert len(set(report["row_digests"])) == 3


def test_rank_summary_counts_rows_two_ranks_share():
    a = {"rank": 0, "pid": 10, "batches": 2, "rows": 2, "tokens": 9, "row_digests": ["x", "y"]}
    b = {"rank": 1, "pid": 11, "batches": 2, "rows": 2, "tokens": 7, "row_digests": ["z", "w"]}
    split = distributed.rank_summary([a, b])
    assert split["rows_shared_in_first_pass"] == 0
    assert split["per_rank"] == [{"rank": 0, "pid": 10, "batches": 2, "rows": 2, "tokens": 9},
                                 {"rank": 1, "pid": 11, "batches": 2, "rows": 2, "tokens": 7}]
    copied = distributed.rank_summary([a, {**b, "row_digests": ["y", "x"]}])
    assert copied["rows_shared_in_first_pass"] == 2


def test_one_process_gathers_itself_and_measures_on_main(monkeypatch, tmp_path):
    report = {"rank": 0, "row_digests": []}
    assert distributed.gather(report) == [report]
    trainer = type("T", (), {})()
    assert distributed.on_main(trainer, distributed.launch({}), lambda: 1.5) == 1.5
    other = distributed.launch({"RANK": "1", "WORLD_SIZE": "2"})
    assert distributed.on_main(trainer, other, lambda: pytest.fail("only rank 0 measures")) is None
    monkeypatch.delenv("SMOL_RUNS_DIR", raising=False)
    assert distributed.runs_dir("x") == ROOT / "runs" / "recipes" / "x"
    monkeypatch.setenv("SMOL_RUNS_DIR", str(tmp_path))
    assert distributed.runs_dir("x") == tmp_path / "recipes" / "x"
    assert distributed.runs_dir("x", tmp_path / "mine") == tmp_path / "mine" / "x"


def test_quiet_swallows_output_of_the_other_ranks(capsys):
    with distributed.quiet(True):
        print("rank 1 says this")
    with distributed.quiet(False):
        print("rank 0 says this")
    assert capsys.readouterr().out == "rank 0 says this\n"


def test_first_pass_overlap_ignores_later_passes():
    # Two ranks given disjoint rows in the first pass (2 rows each), then reshuffled: row "a" reaches rank 1 later.
    a = {"rank": 0, "pid": 1, "batches": 2, "rows": 4, "tokens": 8, "row_digests": ["a", "b", "c", "d"]}
    b = {"rank": 1, "pid": 2, "batches": 2, "rows": 4, "tokens": 8, "row_digests": ["c", "d", "a", "b"]}
    assert distributed.rank_summary([a, b], rows_per_pass=2)["rows_shared_in_first_pass"] == 0
    assert distributed.rank_summary([a, b])["rows_shared_in_first_pass"] == 4  # every row, counted over all passes


def test_throughput_from_trls_token_count():
    log = [{"loss": 1.0, "num_tokens": 100.0}, {"loss": 0.9, "num_tokens": 250.0}, {"train_runtime": 5.0}]
    assert distributed.throughput(log, 5.0) == {"train_tokens": 250, "tokens_per_second": 50.0}
    assert distributed.throughput([{"loss": 1.0}], 5.0) == {}
    assert distributed.throughput(log, 0.0) == {}


def test_first_pass_rows_counts_only_full_batches():
    # 205 rows in batches of 8 on 2 ranks: 12 full batches each (192 rows); the 26th batch is short and topped up
    assert distributed.first_pass_rows(205, 8, 2) == 96
    assert distributed.first_pass_rows(205, 8, 1) == 200
    assert distributed.first_pass_rows(64, 2, 2) == 32
    assert distributed.first_pass_rows(10, 2, 2, rows_per_example=2) == 8  # DPO: chosen and rejected rows


def test_train_measured_counts_times_and_measures_around_training():
    from types import SimpleNamespace

    calls = []

    class Trainer:
        def __init__(self):
            self.data_collator = lambda rows: {"input_ids": torch.tensor(rows)}
            self.train_dataset = [[1, 2], [3, 4], [5, 6], [7, 8]]
            self.args = SimpleNamespace(per_device_train_batch_size=2)
            self.state = SimpleNamespace(log_history=[], global_step=0)
            self.model = "model"
            self.callbacks = []

        def add_callback(self, callback):
            self.callbacks.append(callback)

        def train(self):  # what the Trainer's data loader does: batches through the (wrapped) collator
            calls.append("train")
            (marks,) = self.callbacks
            marks.on_train_begin(self.args, self.state, None)
            for step, start in enumerate((0, 2), 1):
                self.data_collator(self.train_dataset[start : start + 2])
                self.state.global_step = step
                marks.on_step_end(self.args, self.state, None)
                marks.on_log(self.args, self.state, None, logs={"loss": 1.0, "num_tokens": 4.0 * step})
            self.state.log_history = [{"loss": 1.0, "num_tokens": 8.0}]

    trainer = Trainer()
    before, after, cost, ranks = distributed.train_measured(trainer, distributed.launch({}),
                                                            lambda: calls.append("measure") or len(calls))
    assert calls == ["measure", "train", "measure"] and (before, after) == (1, 3)
    assert cost.seconds >= 0 and cost.peak_memory_mb > 0
    assert ranks["ranks"]["per_rank"][0]["rows"] == 4 and ranks["ranks"]["rows_per_pass_per_rank"] == 4
    assert ranks["train_tokens"] == 8
    assert [[step, tokens] for step, _, tokens in ranks["step_marks"]] == [[0, 0], [1, 4], [2, 8]]
    seconds = [s for _, s, _ in ranks["step_marks"]]
    assert seconds[0] == 0.0 and seconds == sorted(seconds)
