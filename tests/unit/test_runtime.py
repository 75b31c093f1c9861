import subprocess
import sys
from pathlib import Path

import pytest

from helpers import runtime


@pytest.mark.parametrize("value, expected", [(None, "full"), ("", "full"), ("0", "full"), ("1", "smoke"),
                                             ("true", "smoke"), ("YES", "smoke")])
def test_profile_from_smoke_test(value, expected):
    env = {} if value is None else {"SMOKE_TEST": value}
    assert runtime.profile(env) == expected


def test_profile_rejects_unknown_value():
    with pytest.raises(ValueError, match="SMOKE_TEST=1"):
        runtime.profile({"SMOKE_TEST": "maybe"})


def test_environment_names_colab_gpu_and_cpu(monkeypatch):
    # Fixed expectations under a controlled environment. Catches: Colab not recognised from its COLAB_RELEASE_TAG
    # variable or an imported google.colab, a GPU machine reported as "cpu" (or the other way round), and Colab
    # reported as "local-gpu" because a GPU is checked first.
    import types

    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(runtime, "has_gpu", lambda: False)
    assert runtime.environment() == "cpu"
    monkeypatch.setattr(runtime, "has_gpu", lambda: True)
    assert runtime.environment() == "local-gpu"
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20260101-060000_RC00")
    assert runtime.environment() == "colab"  # Colab with a GPU is still "colab"
    monkeypatch.setattr(runtime, "has_gpu", lambda: False)
    assert runtime.environment() == "colab"
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert runtime.environment() == "colab"


def test_versions_lists_the_stack():
    found = runtime.versions()
    for name in ("python", "torch", "transformers", "trl", "peft", "unsloth", "datasets"):
        assert name in found
    assert found["trl"] == "1.15.0"
    assert runtime.versions(("no-such-package-xyz",))["no-such-package-xyz"] == "not installed"


# Run in a fresh interpreter, whose peak RSS before the block is small (this test process's peak already holds every
# model the other tests loaded, so a 300 MB block would not move it). Not a direct child of this process: Linux carries
# a parent's memory high-water mark into a child it forks and execs, so a direct child starts with our peak RSS.
# A grandchild forked from a small launcher starts with the launcher's.
LAUNCH = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"
MEASURE_A_BLOCK = """
import json, time
from helpers import runtime

runtime.has_gpu = lambda: False  # the CPU branch, also on a GPU machine
with runtime.measure() as m:
    peak_before = runtime.peak_rss_mb()
    time.sleep(0.05)
    block = b"x" * (300 * 2**20)  # 300 MB, every page written
print(json.dumps({"peak_before": peak_before, **m.as_dict()}))
"""


def test_measure_times_a_block_and_reports_its_peak_memory():
    # Catches: a peak read when the block starts instead of when it ends (it would miss the 300 MB), a KiB/bytes/MiB
    # unit slip in peak_rss_mb (off by a factor of 1024), and a wall time that does not cover the block.
    import json
    import subprocess

    out = subprocess.run([sys.executable, "-c", LAUNCH, sys.executable, "-c", MEASURE_A_BLOCK], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parents[2]).stdout
    found = json.loads(out.splitlines()[-1])
    assert found["memory_kind"] == "process peak RSS"
    assert found["peak_before"] < 250, found  # a fresh interpreter: the check below is meaningful
    assert 250 <= found["peak_memory_mb"] - found["peak_before"] <= 400, found  # the 300 MB block, in MB
    assert 0.04 < found["seconds"] < 5, found
    assert set(found) == {"peak_before", "seconds", "peak_memory_mb", "memory_kind"}


@pytest.mark.parametrize("value, expected", [(None, False), ("no", False), ("0", False), ("1", True), ("TRUE", True)])
def test_env_flag(value, expected):
    assert runtime.env_flag("SOME_FLAG", {} if value is None else {"SOME_FLAG": value}) is expected


def test_env_flag_says_how_to_set_it():
    message = r"SOME_FLAG='maybe' is not understood: use SOME_FLAG=1 to do it or unset it\."
    with pytest.raises(ValueError, match=message):
        runtime.env_flag("SOME_FLAG", {"SOME_FLAG": "maybe"}, " to do it")


# Unix-only modules that would stop `import helpers...` on Windows if imported unguarded at module level.
UNIX_ONLY = ("resource", "fcntl", "termios", "pwd", "grp")
IMPORT_ALL = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None  # as on Windows: `import name` raises ImportError
import importlib, pkgutil, helpers
for info in pkgutil.iter_modules(helpers.__path__):
    importlib.import_module("helpers." + info.name)
from helpers import runtime
print("peak", runtime.resource is None)
"""


def test_every_helpers_module_imports_without_unix_only_modules():
    # Catches an unguarded `import resource` (or fcntl, ...) in any helpers module: on Windows every notebook's
    # set-up cell would fail. The child blocks those modules the way Windows lacks them.
    code = IMPORT_ALL.format(blocked=UNIX_ONLY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "peak True" in done.stdout


def test_peak_rss_mb_uses_the_peak_working_set_without_resource(monkeypatch):
    # Catches a Windows path that reads the current (not the peak) memory, or a bytes/MB slip.
    import psutil

    class Info:
        peak_wset, rss = 3 * 2**30, 2**20

    monkeypatch.setattr(runtime, "resource", None)
    monkeypatch.setattr(psutil.Process, "memory_info", lambda self: Info())
    assert runtime.peak_rss_mb() == 3072.0


EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
flags\t\t: fpu avx2

processor\t: 1
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
"""


def test_cpu_model_names_the_family_and_model_that_tell_two_epycs_apart():
    # Two machines of this project's kind both said "AMD EPYC" and gave different numbers from the first step: one
    # was family 25 model 1 (no AVX-512), the other family 25 model 17.
    assert runtime.cpu_model(EPYC) == "AMD EPYC, family 25 model 17"
    assert runtime.cpu_model("model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n") == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert runtime.cpu_model("processor\t: 0\nBogoMIPS\t: 48.00\nModel\t\t: Raspberry Pi 4\n") == "Raspberry Pi 4"


def test_cpu_kernels_and_device_name_record_what_changes_the_numbers():
    import torch

    kernels = runtime.cpu_kernels()
    assert kernels["torch_threads"] == torch.get_num_threads() >= 1
    assert kernels["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert kernels["cpu_model"] == runtime.cpu_model() and kernels["cpu_model"] != "unknown CPU"
    if not runtime.has_gpu():
        assert runtime.device_name().startswith(f"CPU ({runtime.cpu_model()}, ")
