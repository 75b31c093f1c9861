"""helpers.t4 (SMOL_EMULATE_T4) without a GPU: what it patches, on a stand-in torch, and when it refuses."""

from __future__ import annotations

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

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        assert "runtime.emulate_t4_if_asked()" in code, path.name
        # engine.choose() imports Unsloth (where it is the engine), so the switch must come before it
        assert code.index("runtime.emulate_t4_if_asked()") < code.index("engine.choose()"), path.name
