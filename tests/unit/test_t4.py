"""helpers.t4 (SMOL_EMULATE_T4) without a GPU: what it patches, on a stand-in torch, and when it refuses."""

from __future__ import annotations

import sys
import types

import pytest

from helpers import results, runtime, t4

GiB = 2**30


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    monkeypatch.setattr(t4, "_state", {})


@pytest.mark.parametrize("value, expected", [(None, False), ("", False), ("0", False), ("1", True), ("yes", True)])
def test_asked(value, expected):
    assert t4.asked({} if value is None else {t4.ENV_VAR: value}) is expected


def test_asked_rejects_unknown_values():
    with pytest.raises(ValueError, match="SMOL_EMULATE_T4=1"):
        t4.asked({t4.ENV_VAR: "t4"})


def h200_torch():
    """A stand-in for torch with an H200's answers, recording what the emulation sets."""
    real = types.SimpleNamespace(
        name="NVIDIA H200", major=9, minor=0, total_memory=140 * GiB, multi_processor_count=132
    )
    calls: dict[str, object] = {}
    cuda = types.SimpleNamespace(
        get_device_properties=lambda device=None: real,
        get_device_capability=lambda device=None: (9, 0),
        mem_get_info=lambda device=None: (100 * GiB, 140 * GiB),
        memory_reserved=lambda device=None: 2 * GiB,
        set_per_process_memory_fraction=lambda fraction, device=None: calls.update(fraction=fraction),
        memory=types.SimpleNamespace(),
    )
    backends = types.SimpleNamespace(
        cuda=types.SimpleNamespace(
            enable_flash_sdp=lambda on: calls.update(flash=on),
            enable_cudnn_sdp=lambda on: calls.update(cudnn=on),
            matmul=types.SimpleNamespace(allow_tf32=True),
        ),
        cudnn=types.SimpleNamespace(allow_tf32=True),
    )
    return types.SimpleNamespace(cuda=cuda, backends=backends), calls


def test_patch_torch_reports_a_t4_and_caps_memory():
    torch, calls = h200_torch()
    changes = t4.patch_torch(torch)
    props = torch.cuda.get_device_properties(0)
    assert (props.name, props.major, props.minor, props.total_memory) == ("Tesla T4", 7, 5, 15 * GiB)
    assert props.multi_processor_count == 132  # everything else is the real GPU's
    assert torch.cuda.get_device_capability() == (7, 5)
    assert torch.cuda.mem_get_info() == (13 * GiB, 15 * GiB) == torch.cuda.memory.mem_get_info()
    assert calls["fraction"] == pytest.approx(15 / 140)
    assert torch.cuda.get_per_process_memory_fraction() == 1.0  # total * fraction = 15 GiB for whoever multiplies
    assert calls["flash"] is False and calls["cudnn"] is False
    assert torch.backends.cuda.matmul.allow_tf32 is False and torch.backends.cudnn.allow_tf32 is False
    assert t4.active() and t4.real_device_name() == "NVIDIA H200"
    assert len(changes) == 3 and "7.5" in changes[0] and "140 GiB" in changes[1]


def test_torch_bf16_check_follows_the_patched_properties(monkeypatch):
    """torch.cuda.is_bf16_supported reads get_device_properties(device).major when called, so the one patch covers it
    (and transformers' and accelerate's checks, which call it)."""
    import torch

    stand_in, _ = h200_torch()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", stand_in.cuda.get_device_properties)
    assert torch.cuda.is_bf16_supported(including_emulation=False) is True  # the H200 as it is
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda device=None: t4.T4Properties(stand_in.cuda.get_device_properties())
    )
    assert torch.cuda.is_bf16_supported(including_emulation=False) is False
    assert torch.cuda.get_device_capability(0) == (7, 5) and torch.cuda.get_device_name(0) == "Tesla T4"


def test_emulate_refuses_after_unsloth_is_imported(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "unsloth", types.ModuleType("unsloth"))
    with pytest.raises(RuntimeError, match=r"must take effect before unsloth\b.* is imported\. Restart the kernel"):
        t4.emulate({t4.ENV_VAR: "1"})
    assert not t4.active()


def test_emulate_does_nothing_when_not_asked_or_on_a_cpu(monkeypatch, capsys):
    import torch

    assert t4.emulate({}) == [] and capsys.readouterr().out == ""
    monkeypatch.setattr(t4, "MUST_COME_AFTER", ())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert t4.emulate({t4.ENV_VAR: "1"}) == []
    assert "no CUDA GPU here" in capsys.readouterr().out
    assert not t4.active() and runtime.emulated() is None


def test_results_header_says_emulated_only_while_on(monkeypatch):
    assert "emulated" not in results.header("01_x", "smoke")
    monkeypatch.setattr(
        t4, "_state", {"real_properties": lambda device=None: types.SimpleNamespace(name="NVIDIA H200")}
    )
    assert runtime.emulated() == "T4"
    assert results.header("01_x", "smoke")["emulated"] == "T4"


def test_every_notebook_offers_the_switch_before_unsloth_loads():
    import json

    from helpers import ROOT

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, f"no notebooks/[0-9][0-9]_*.ipynb under {ROOT}"
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "runtime.emulate_t4_if_asked()" in code, path.name
        # engine.choose() imports Unsloth (where it is the engine), so the switch must come before it
        assert code.index("runtime.emulate_t4_if_asked()") < code.index("engine.choose()"), path.name


# --- the precision the notebooks pick (engine.default_dtype / mixed_precision), on a T4 and on a bigger GPU ---------


@pytest.fixture
def gpu_stand_in(monkeypatch):
    """Make torch see one CUDA GPU: an H200 as it is, or (t4=True) the same card seen through helpers.t4's
    properties, as on a T4 or under SMOL_EMULATE_T4=1. Returns the switch (import what reads the device first)."""
    import torch

    stand_in, _ = h200_torch()

    def use(t4_card: bool) -> None:
        real = stand_in.cuda.get_device_properties()
        props = t4.T4Properties(real) if t4_card else real
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)

    return use


def test_precision_on_a_t4_is_float16_weights_with_fp16_and_float32_stays_float32(gpu_stand_in):
    import torch

    from helpers import engine

    gpu_stand_in(t4_card=True)
    assert engine.accelerator() == "cuda" and engine.bf16_supported() is False
    assert engine.default_dtype() == torch.float16  # what Unsloth's dtype=None picks on a T4
    assert engine.mixed_precision(torch.float16) == (False, True)  # fp16 autocast with a gradient scaler
    assert engine.mixed_precision(torch.float32) == (False, False)  # notebook 01: float32 throughout on a T4


def test_precision_on_an_ampere_or_newer_gpu_is_bfloat16(gpu_stand_in):
    import torch

    from helpers import engine

    gpu_stand_in(t4_card=False)
    assert engine.bf16_supported() is True and engine.default_dtype() == torch.bfloat16
    assert engine.mixed_precision(torch.bfloat16) == (True, False)
    assert engine.mixed_precision(torch.float32) == (True, False)  # float32 weights, bfloat16 autocast


def test_precision_without_a_cuda_gpu(monkeypatch):
    import torch

    from helpers import engine

    # the CPU: bfloat16 autocast, as TRL's default bf16=True gives with use_cpu=True (every CPU reference ran so)
    assert engine.mixed_precision(torch.float32, "cpu") == (True, False)
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: False)
    assert engine.mixed_precision(torch.float32, "mps") == (False, False)  # transformers refuses bf16 on macOS < 14
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor: (major, minor) <= (14, 0))
    assert engine.mixed_precision(torch.float32, "mps") == (True, False)


def test_plain_engine_trains_notebook_05s_embedding_copies_with_fp16_and_loss_scaling(gpu_stand_in):
    """Notebook 05 on the plain engine on a T4: float16 weights, LoRA plus trainable embed_tokens / lm_head copies
    (modules_to_save), fp16 mixed precision with a GradScaler. Float16 copies stop the scaler ("Attempting to unscale
    FP16 gradients."); helpers.plain trains them in float32, as Unsloth does. The step runs on the CPU, with its own
    fp16 autocast and GradScaler (accelerate turns fp16 off on a CPU, so not through a Trainer)."""
    import peft  # noqa: F401  (before the stand-in: importing transformers' models or peft reads the device)
    import torch

    from helpers import engine, plain
    from tests.unit.test_engine import SEVEN, tiny_llama

    model = tiny_llama(tied=False)
    gpu_stand_in(t4_card=True)
    dtype = engine.default_dtype()
    assert dtype == torch.float16 and engine.mixed_precision(dtype) == (False, True)
    model = plain.PlainLanguageModel.get_peft_model(
        model.to(dtype), r=4, target_modules=SEVEN, modules_to_save=["embed_tokens", "lm_head"],
        use_gradient_checkpointing="unsloth", random_state=3407,
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    copies, _ = plain.embedding_parameters(model)
    at_start = [c.detach().clone() for c in copies]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    scaler = torch.amp.GradScaler("cpu")
    ids = torch.randint(0, 64, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.float16):
        loss = model(input_ids=ids, labels=ids).loss
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)  # as the Trainer's gradient clipping does first
    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
    scaler.step(optimizer)
    scaler.update()
    assert scaler.get_scale() == 2.0**16  # no inf/NaN gradient: the step was taken
    assert len(copies) == 2 and all(not torch.equal(c, c0) for c, c0 in zip(copies, at_start))
    assert {p.dtype for p in trainable} == {torch.float32}  # the copies, and PEFT's LoRA matrices
    assert model.base_model.model.lm_head.original_module.weight.dtype == torch.float16  # the frozen weights stay
    # notebook 05 then measures and generates without autocast: the float16 model around the float32 copies still runs
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.dtype == torch.float16 and torch.isfinite(logits).all()
    assert model.generate(input_ids=ids[:1, :3], max_new_tokens=2, do_sample=False).shape == (1, 5)


def test_plain_engine_keeps_bfloat16_embedding_copies_as_unsloth_does(gpu_stand_in):
    import peft  # noqa: F401  (before the stand-in, as above)
    import torch

    from helpers import engine, plain
    from tests.unit.test_engine import tiny_llama

    model = tiny_llama(tied=False)
    gpu_stand_in(t4_card=False)
    model = plain.PlainLanguageModel.get_peft_model(
        model.to(engine.default_dtype()), r=4, target_modules=["q_proj"],
        modules_to_save=["embed_tokens", "lm_head"], use_gradient_checkpointing=False,
    )
    copies, _ = plain.embedding_parameters(model)
    assert [c.dtype for c in copies] == [torch.bfloat16] * 2 and plain.copies_in_float32(model) == 0


T4_AFTER_UNSLOTH = """
import sys, types
import torch
from trl import SFTConfig  # before the stand-in: importing trl reads the device
from helpers import engine, t4
card = t4.T4Properties(types.SimpleNamespace(name="NVIDIA H200", major=9, minor=0, total_memory=140 * 2**30))
torch.cuda.is_available, torch.cuda.current_device = (lambda: True), (lambda: 0)
torch.cuda.get_device_properties = lambda device=None: card
torch.cuda.is_bf16_supported = lambda *args, **kwargs: False  # what Unsloth makes it answer on a T4
torch.cuda.set_device = lambda device: None  # the stand-in has no device to select
try:
    SFTConfig(output_dir=sys.argv[1])
    print("TRL default: accepted")
except ValueError as error:
    print("TRL default: refused:", error)
bf16, fp16 = engine.mixed_precision(engine.default_dtype())
config = SFTConfig(output_dir=sys.argv[1], bf16=bf16, fp16=fp16)
print("notebook flags:", config.bf16, config.fp16)
"""


def test_trl_default_fails_on_a_t4_after_unsloth_and_the_notebooks_flags_do_not(tmp_path):
    """Why the notebooks pass bf16/fp16 themselves: left unset, TRL's configs ask for bf16 ("bf16 defaults to True if
    fp16 is not set"), which transformers refuses once torch.cuda.is_bf16_supported answers False, as Unsloth makes it
    answer on a T4 (also when its import then fails and the plain engine runs). In a fresh process: where Unsloth is
    imported, trl's config classes are Unsloth's (bf16 defaults to False), and transformers caches its answer."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", T4_AFTER_UNSLOTH, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "TRL default: refused: Your setup doesn't support bf16/gpu" in done.stdout
    assert "notebook flags: False True" in done.stdout  # float16 weights, fp16 mixed precision


def test_fallback_to_the_plain_engine_on_a_gpu_is_loud(gpu_stand_in, monkeypatch, capsys):
    from helpers import engine

    gpu_stand_in(t4_card=True)
    monkeypatch.setattr(engine, "_chosen", None)
    monkeypatch.setattr(engine, "unsloth_blocker", lambda: None)
    monkeypatch.setitem(__import__("sys").modules, "unsloth", None)  # `import unsloth` raises ImportError
    assert engine.choose({}) == "plain"
    out = capsys.readouterr().out
    assert "WARNING: Unsloth did not load on this NVIDIA GPU" in out
    assert "import unsloth failed: ModuleNotFoundError" in out  # the reason, in the banner
    monkeypatch.setattr(engine, "_chosen", None)
    monkeypatch.delitem(__import__("sys").modules, "unsloth")
    assert engine.choose({engine.ENV_VAR: "plain"}) == "plain"  # asked for: no warning
    assert "WARNING" not in capsys.readouterr().out


def test_every_trainer_config_in_the_notebooks_takes_the_settings_precision():
    import json
    import re

    from helpers import ROOT

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks, f"no notebooks/[0-9][0-9]_*.ipynb under {ROOT}"
    for path in notebooks:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "BF16, FP16 = engine.mixed_precision(DTYPE)" in code, path.name
        configs = re.findall(r"\b(?:SFT|DPO|GRPO|CPT)Config\((.*?)\n\s*\)", code, flags=re.S)
        assert configs, path.name
        for args in configs:
            assert all(f"{k}={v}," in args for k, v in (("bf16", "BF16"), ("fp16", "FP16"), ("use_cpu", "USE_CPU"))), (
                path.name, args[:80])
