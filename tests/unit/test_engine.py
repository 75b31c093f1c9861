"""helpers.engine: choosing Unsloth or plain transformers + PEFT + TRL, the plain engine's FastLanguageModel calls, the
second learning rate of notebook 05, the merged save, and TRL's fused LM head in torch."""

import os
import subprocess
import sys

import pytest
import torch

from helpers import engine, plain, torch_lm_head

SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_llama(vocab=64, tied=True):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=tied)
    return LlamaForCausalLM(config)


def word_tokenizer():
    """A 64-word tokenizer ("w0" ... "w63") for the tiny model."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    words = Tokenizer(WordLevel({f"w{i}": i for i in range(64)}, unk_token="w0"))
    words.pre_tokenizer = WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=words, eos_token="w1", pad_token="w2", unk_token="w0")


# --- choosing ------------------------------------------------------------------------------------------------------


def test_requested_reads_smol_engine():
    assert engine.requested({}) == "auto"
    assert engine.requested({"SMOL_ENGINE": " Plain "}) == "plain"
    assert engine.requested({"SMOL_ENGINE": "unsloth"}) == "unsloth"
    with pytest.raises(ValueError, match="SMOL_ENGINE='fast' is not understood"):
        engine.requested({"SMOL_ENGINE": "fast"})


def test_unsloth_blocker_names_macos_and_windows_without_a_gpu():
    assert "macOS" in engine.unsloth_blocker("darwin", has_cuda=False)
    assert "macOS" in engine.unsloth_blocker("darwin", has_cuda=True)  # no CUDA on a Mac either way
    assert "NVIDIA GPU" in engine.unsloth_blocker("win32", has_cuda=False)
    assert engine.unsloth_blocker("win32", has_cuda=True) is None  # installed here
    assert engine.unsloth_blocker("linux", has_cuda=False) is None


def test_unsloth_blocker_says_when_it_is_not_installed(monkeypatch):
    real = engine.importlib.util.find_spec
    monkeypatch.setattr(engine.importlib.util, "find_spec", lambda n: None if n == "unsloth" else real(n))
    assert engine.unsloth_blocker("linux", has_cuda=False) == "unsloth is not installed"


def test_choose_plain_refuses_once_unsloth_is_imported(monkeypatch):
    monkeypatch.setitem(sys.modules, "unsloth", sys.modules.get("unsloth") or object())
    with pytest.raises(RuntimeError, match="restart the kernel"):
        engine.choose({"SMOL_ENGINE": "plain"})


def test_choose_unsloth_fails_loudly_where_it_cannot_run(monkeypatch):
    monkeypatch.setattr(engine, "unsloth_blocker", lambda: "Unsloth has no macOS backend")
    with pytest.raises(RuntimeError, match="SMOL_ENGINE=unsloth, but Unsloth has no macOS backend"):
        engine.choose({"SMOL_ENGINE": "unsloth"})


def run_python(code, **env):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_plain_engine_process_never_imports_unsloth_and_swaps_the_lm_head():
    out = run_python(
        "import sys\n"
        "from helpers import engine, torch_lm_head\n"
        "print('chose', engine.choose())\n"
        "import trl, trl.trainer.utils as u\n"
        "from trl import SFTTrainer, DPOTrainer, GRPOTrainer\n"
        "print('unsloth imported', 'unsloth' in sys.modules)\n"
        "print('torch head', u._ChunkedLogProbFunction is torch_lm_head.TorchLMHeadLogProb)\n"
        "print(engine.describe())\n",
        SMOL_ENGINE="plain",
    )
    assert "engine: plain transformers + PEFT + TRL\n  because SMOL_ENGINE=plain is set" in out
    assert "chose plain" in out and "unsloth imported False" in out and "torch head True" in out
    assert "{'engine': 'plain', 'unsloth_imported': False}" in out


def test_a_launch_unsloth_does_not_fit_makes_auto_plain_without_trying_it():
    # recipes/distributed.py's one call: where Unsloth imports but the launch does not suit it (DeepSpeed, FSDP, the
    # CPU), "auto" runs plain for that reason, never imports Unsloth, and shows no fallback warning; "unsloth" still
    # tries Unsloth, as before.
    code = ("from helpers import engine; engine.choose({}, unfit='DeepSpeed splits the weights'); "
            "print(engine.describe())")
    out = run_python(code, SMOL_ENGINE="")
    assert "engine: plain" in out and "because DeepSpeed splits the weights" in out and "WARNING" not in out
    assert "{'engine': 'plain', 'unsloth_imported': False}" in out
    code = ("from helpers import engine; engine.choose({'SMOL_ENGINE': 'unsloth'}, unfit='DeepSpeed'); "
            "print(engine.describe())")
    assert "{'engine': 'unsloth', 'unsloth_imported': True}" in run_python(code)


def test_auto_picks_unsloth_where_it_imports():
    out = run_python("from helpers import engine; engine.choose(); print(engine.describe())", SMOL_ENGINE="")
    assert "engine: Unsloth\n" in out
    assert "{'engine': 'unsloth', 'unsloth_imported': True}" in out


def test_the_set_up_cell_imports_print_no_library_warnings():
    # What the set-up cell does: choose the engine (Unsloth imports), then import the notebooks' libraries.
    done = subprocess.run(
        [sys.executable, "-c", "from helpers import engine; engine.choose(); import trl, peft, bitsandbytes"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "SMOL_ENGINE": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "_pytree" not in done.stderr and "gemm_4bit_forward" not in done.stderr, done.stderr


def test_quiet_import_warnings_drops_only_the_known_lines(caplog):
    import logging

    engine.quiet_import_warnings()
    engine.quiet_import_warnings()  # twice: still one filter per logger
    for name, text in engine.QUIET.items():
        logger = logging.getLogger(name)
        assert len(logger.filters) == 1
        with caplog.at_level(logging.WARNING, logger=name):
            caplog.clear()
            logger.warning("<enum X> %s: no module", text)
            logger.warning("something else went wrong")
        assert [r.getMessage() for r in caplog.records] == ["something else went wrong"]


# --- TRL's fused LM head, in torch ---------------------------------------------------------------------------------


def reference_outputs(hidden, weight, bias, targets, temperature, softcap, scale):
    z = (hidden @ weight.t() + bias).float() * scale
    z = softcap * torch.tanh(z / softcap)
    z = z / temperature
    log_p = torch.log_softmax(z, -1)
    return (log_p.gather(-1, targets[:, None])[:, 0], -(log_p.exp() * log_p).sum(-1),
            torch.log((log_p.exp() ** 2).sum(-1)), z.mean(-1), z.argmax(-1) == targets)


@pytest.mark.parametrize("chunk", [1024, 3])
def test_torch_lm_head_matches_the_full_logits_and_their_gradients(monkeypatch, chunk):
    monkeypatch.setattr(torch_lm_head, "TOKEN_CHUNK", chunk)  # 3: several tiles, one of them short
    torch.manual_seed(0)
    hidden = torch.randn(10, 8, requires_grad=True)
    weight = torch.randn(50, 8, requires_grad=True)
    bias = torch.randn(50)
    targets = torch.randint(0, 50, (10,))
    got = torch_lm_head.torch_lm_head_logprobs(hidden, weight, bias, targets, 0.7, 4096, 30.0, 0.5,
                                        ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1"))
    want = reference_outputs(hidden, weight, bias, targets, 0.7, 30.0, 0.5)
    for a, b in zip(got[:4], want[:4]):
        torch.testing.assert_close(a, b)
    assert torch.equal(got[4], want[4])
    grads = torch.autograd.grad(got[0].sum() + got[1].sum(), (hidden, weight))
    want_grads = torch.autograd.grad(want[0].sum() + want[1].sum(), (hidden, weight))
    for a, b in zip(grads, want_grads):
        torch.testing.assert_close(a, b)


def test_torch_lm_head_leaves_out_what_is_not_asked_for():
    out = torch_lm_head.torch_lm_head_logprobs(torch.randn(4, 8), torch.randn(20, 8), None, torch.tensor([1, 2, 3, 4]),
                                               1.0)
    assert out[0].shape == (4,) and out[1:] == (None, None, None, None)


def test_fused_lm_head_of_trl_runs_on_a_cpu_through_the_torch_version(monkeypatch):
    # TRL 1.15's add_fused_lm_head: without the swap this raises on a CPU ("0 active drivers"); with it, the fused
    # loss equals the model's own cross-entropy over the same labels.
    import trl.trainer.utils as trl_utils

    monkeypatch.setattr(trl_utils, "_ChunkedLogProbFunction", trl_utils._ChunkedLogProbFunction)
    assert torch_lm_head.use_for("cpu") is True
    assert torch_lm_head.use_for("cuda") is False  # on a GPU the Triton kernel stays
    model = tiny_llama()
    ids = torch.randint(0, 64, (2, 7))
    labels = ids.clone()
    labels[:, :3] = -100  # the prompt is not scored
    own = model(input_ids=ids, labels=labels).loss
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    fused = model(input_ids=ids, labels=labels, fused_lm_head=True)
    torch.testing.assert_close(fused.loss, own)
    assert fused.entropy.shape == (2, 6) and fused.is_top1.dtype == torch.bool  # per next-token position
    fused.loss.backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0


# --- the plain engine's FastLanguageModel --------------------------------------------------------------------------


def test_plain_from_pretrained_and_get_peft_model_give_the_taught_lora():
    from helpers import models

    model, tokenizer = plain.PlainLanguageModel.from_pretrained(
        model_name=str(models.offline_model_dir()), max_seq_length=512, dtype=torch.float32, load_in_4bit=False
    )
    assert type(model).__name__ == "LlamaForCausalLM" and model.dtype == torch.float32
    assert tokenizer.model_max_length == 512 and len(tokenizer) == 49152
    assert models.count_parameters(model)["trainable"] == 134_515_008  # everything, as full_finetuning=True
    model = plain.PlainLanguageModel.get_peft_model(
        model, r=16, lora_alpha=16, lora_dropout=0.0, target_modules=SEVEN, bias="none",
        use_gradient_checkpointing="unsloth", random_state=3407,
    )
    counts = models.count_parameters(model)
    assert (counts["trainable"], counts["total"]) == (4_884_480, 139_399_488)  # as Unsloth's (tests/results)
    assert model.base_model.model.is_gradient_checkpointing
    with pytest.raises(ValueError, match="load_in_4bit"):
        plain.PlainLanguageModel.from_pretrained(model_name="x", load_in_4bit=True)


def test_plain_lora_starts_from_the_seed():
    a = plain.PlainLanguageModel.get_peft_model(tiny_llama(), r=4, target_modules=["q_proj"], random_state=1)
    b = plain.PlainLanguageModel.get_peft_model(tiny_llama(), r=4, target_modules=["q_proj"], random_state=1)
    c = plain.PlainLanguageModel.get_peft_model(tiny_llama(), r=4, target_modules=["q_proj"], random_state=2)
    name = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
    weights = [dict(m.named_parameters())[name] for m in (a, b, c)]
    assert torch.equal(weights[0], weights[1]) and not torch.equal(weights[0], weights[2])


def test_save_merged_16bit_folds_the_update_in_and_keeps_the_adapter(tmp_path):
    from transformers import AutoModelForCausalLM

    from helpers import models

    model = plain.PlainLanguageModel.get_peft_model(tiny_llama(), r=4, lora_alpha=8, target_modules=["q_proj"],
                                                     use_gradient_checkpointing=False)
    module = model.base_model.model.model.layers[0].self_attn.q_proj
    torch.nn.init.normal_(module.lora_B["default"].weight)  # B starts at zero: give the update a value
    factors = models.lora_factors(model, "layers.0.self_attn.q_proj")
    plain.save_merged_16bit(model, word_tokenizer(), tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert merged.dtype == torch.bfloat16
    want = (factors["W"] + factors["delta"]).to(torch.bfloat16)
    assert torch.equal(merged.model.layers[0].self_attn.q_proj.weight, want)
    assert hasattr(module, "lora_A")  # the PEFT model still has its adapter
    assert (tmp_path / "merged" / "tokenizer.json").exists()


# --- notebook 05's two learning rates ------------------------------------------------------------------------------


@pytest.mark.parametrize("embedding_rate, rates", [(1e-3, [2e-4, 1e-3]), (None, [2e-4, 2e-4])])
def test_cpt_trainer_trains_the_embedding_copies_at_their_own_rate(tmp_path, embedding_rate, rates):
    from datasets import Dataset

    from helpers import vocab

    model = plain.PlainLanguageModel.get_peft_model(
        tiny_llama(), r=4, target_modules=SEVEN, modules_to_save=["embed_tokens", "lm_head"],
        use_gradient_checkpointing=False,
    )
    copies, rest = plain.embedding_parameters(model)
    assert len(copies) == 2 and sum(p.numel() for p in copies) == sum(w.numel() for w in vocab.embedding_copies(model))
    assert rest and all(p.ndim == 2 for p in rest) and len(rest) == 2 * len(SEVEN)  # the LoRA A and B matrices
    config = plain.CPTConfig(output_dir=str(tmp_path), learning_rate=2e-4, embedding_learning_rate=embedding_rate,
                              weight_decay=0.0, use_cpu=True, report_to="none", max_steps=1)
    trainer = plain.CPTTrainer(model=model, processing_class=word_tokenizer(), args=config,
                                train_dataset=Dataset.from_dict({"text": ["w3 w4 w5"] * 4}))
    groups = trainer.create_optimizer().param_groups
    assert [g["lr"] for g in groups] == rates
    assert [sum(p.numel() for p in g["params"]) for g in groups] == [sum(p.numel() for p in rest),
                                                                      sum(p.numel() for p in copies)]


def test_accelerator_and_device_name_on_an_apple_gpu(monkeypatch):
    # No Mac here: torch is told it has an Apple GPU and no CUDA one.
    from helpers import runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert engine.accelerator() == "cpu" and runtime.device_name().startswith("CPU (")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert engine.accelerator() == "mps" and runtime.device_name() == "Apple GPU (mps)"
    assert engine.default_dtype("mps") == torch.float32 and engine.default_dtype("cpu") == torch.float32
