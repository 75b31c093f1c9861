import time

import pytest

from helpers import runtime


@pytest.mark.parametrize("value, expected", [(None, "full"), ("", "full"), ("0", "full"), ("1", "smoke"), ("true", "smoke"), ("YES", "smoke")])
def test_profile_from_smoke_test(value, expected):
    env = {} if value is None else {"SMOKE_TEST": value}
    assert runtime.profile(env) == expected


def test_profile_rejects_unknown_value():
    with pytest.raises(ValueError, match="SMOKE_TEST=1"):
        runtime.profile({"SMOKE_TEST": "maybe"})


def test_environment_on_this_machine():
    assert runtime.environment() in ("colab", "local-gpu", "cpu")
    assert runtime.environment() == ("local-gpu" if runtime.has_gpu() else "cpu") or runtime.in_colab()


def test_seed_everything_makes_torch_repeatable():
    import torch

    runtime.seed_everything(7)
    a = torch.rand(3)
    runtime.seed_everything(7)
    assert torch.equal(a, torch.rand(3))


def test_versions_lists_the_stack():
    found = runtime.versions()
    for name in ("python", "torch", "transformers", "trl", "peft", "unsloth", "datasets"):
        assert name in found
    assert found["trl"] == "1.15.0"
    assert runtime.versions(("no-such-package-xyz",))["no-such-package-xyz"] == "not installed"


def test_measure_times_a_block_and_reports_memory():
    with runtime.measure() as m:
        time.sleep(0.05)
        blob = bytearray(50 * 2**20)  # 50 MB
    assert 0.04 < m.seconds < 5
    assert m.peak_memory_mb > 50
    assert m.memory_kind in ("process peak RSS", "GPU max allocated")
    assert set(m.as_dict()) == {"seconds", "peak_memory_mb", "memory_kind"}
    del blob


@pytest.mark.parametrize("value, expected", [(None, False), ("no", False), ("0", False), ("1", True), ("TRUE", True)])
def test_env_flag(value, expected):
    assert runtime.env_flag("SOME_FLAG", {} if value is None else {"SOME_FLAG": value}) is expected


def test_env_flag_says_how_to_set_it():
    with pytest.raises(ValueError, match=r"SOME_FLAG='maybe' is not understood: use SOME_FLAG=1 to do it or unset it\."):
        runtime.env_flag("SOME_FLAG", {"SOME_FLAG": "maybe"}, " to do it")
