"""T4 emulation: make a bigger NVIDIA GPU take the precision and memory paths a free Colab T4 takes.

Set SMOL_EMULATE_T4=1 and call `runtime.emulate_t4_if_asked()` before `import unsloth` (the notebooks' set-up cell
does).
On a CUDA machine it patches torch so that every check Unsloth, transformers, TRL and accelerate make sees a T4:
compute capability (7, 5), so no bfloat16 (fp16 autocast with a gradient scaler; fp32 full fine-tuning), the name
"Tesla T4", and 15 GiB of memory, which it also enforces with torch.cuda.set_per_process_memory_fraction. It does
nothing on a CPU.

Which checks it has to cover (read in the installed sources of unsloth 2026.10.9, unsloth_zoo, transformers 5,
TRL 1.15, accelerate 1.15 and torch 2.13):
- torch.cuda.is_bf16_supported, get_device_capability and get_device_name all read get_device_properties when called;
  Unsloth computes SUPPORTS_BFLOAT16 (`capability[0] >= 8`) at import and then wraps is_bf16_supported to ignore
  emulated bf16, as a T4 needs. So the patch must come before `import unsloth`.
- transformers (is_torch_bf16_gpu_available, TF32), accelerate (is_bf16_available) and Unsloth's trainers ask
  torch.cuda.is_bf16_supported / get_device_properties at call time.
- Memory: Unsloth and accelerate read total_memory and mem_get_info.
- Compilers must keep the real GPU: Triton and torch.compile build kernels for the capability they see, and sm_75
  kernels would not run here, so their own capability lookups are given the real one back.
- C++ paths that no Python patch reaches: PyTorch's attention would still pick the flash and cuDNN kernels, which a
  T4 lacks, so those backends are switched off; TF32 is switched off (a T4 has none).
"""

from __future__ import annotations

import sys
from typing import Any

from helpers.switches import env_flag

ENV_VAR = "SMOL_EMULATE_T4"
T4_NAME = "Tesla T4"
T4_CAPABILITY = (7, 5)
T4_MEMORY_BYTES = 15 * 2**30
# Imported after the patch only: these bind torch's device functions (or results of them) at import.
MUST_COME_AFTER = ("unsloth", "unsloth_zoo", "transformers", "trl", "accelerate", "peft", "triton", "torch._dynamo")

_state: dict[str, Any] = {}


def asked(env: dict[str, str] | None = None) -> bool:
    """True when SMOL_EMULATE_T4 is 1/true/yes."""
    return env_flag(ENV_VAR, env)


def active() -> bool:
    """True once emulate() has patched torch in this process."""
    return bool(_state)


class T4Properties:
    """The real device properties, except name, capability and total memory, which are a T4's."""

    name = T4_NAME
    major, minor = T4_CAPABILITY
    total_memory = T4_MEMORY_BYTES

    def __init__(self, real: Any) -> None:
        self._real = real

    def __getattr__(self, key: str) -> Any:
        return getattr(self._real, key)

    def __repr__(self) -> str:
        return (
            f"T4Properties(name={self.name!r}, major={self.major}, minor={self.minor}, "
            f"total_memory={self.total_memory})"
        )


def patch_torch(torch: Any) -> list[str]:
    """Patch torch.cuda so that it reports a T4; returns what it changed, one line each. `torch` may be a stand-in."""
    cuda = torch.cuda
    real_properties, real_capability = cuda.get_device_properties, cuda.get_device_capability
    real_mem_get_info = cuda.mem_get_info
    _state.update(real_properties=real_properties, real_capability=real_capability)

    def get_device_properties(device: Any = None) -> T4Properties:
        return T4Properties(real_properties(device))

    def get_device_capability(device: Any = None) -> tuple[int, int]:
        return T4_CAPABILITY

    def mem_get_info(device: Any = None) -> tuple[int, int]:
        free, _ = real_mem_get_info(device)
        return min(free, T4_MEMORY_BYTES - cuda.memory_reserved(device)), T4_MEMORY_BYTES

    real_total = real_properties(0).total_memory
    fraction = min(1.0, T4_MEMORY_BYTES / real_total)
    cuda.set_per_process_memory_fraction(fraction)
    cuda.get_device_properties = get_device_properties
    cuda.get_device_capability = get_device_capability
    cuda.mem_get_info = mem_get_info
    cuda.memory.mem_get_info = mem_get_info
    # Code that computes usable memory as total * fraction must see 15 GiB * 1.0, not 15 GiB * (15 GiB / real).
    cuda.get_per_process_memory_fraction = lambda device=None: 1.0
    cuda.memory.get_per_process_memory_fraction = cuda.get_per_process_memory_fraction
    # No flash / cuDNN attention and no TF32 on a T4 (chosen in C++, so switched off rather than patched).
    torch.backends.cuda.enable_flash_sdp(False)
    torch.backends.cuda.enable_cudnn_sdp(False)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return [
        f"torch.cuda reports {T4_NAME}, compute capability {T4_CAPABILITY[0]}.{T4_CAPABILITY[1]} (so no bfloat16), "
        f"{T4_MEMORY_BYTES / 2**30:.0f} GiB",
        f"memory capped at {T4_MEMORY_BYTES / 2**30:.0f} GiB of the real {real_total / 2**30:.0f} GiB "
        f"(set_per_process_memory_fraction({fraction:.3f}))",
        "PyTorch attention: flash and cuDNN kernels off; TF32 off",
    ]


def real_device_name() -> str:
    """The name of the GPU underneath the emulation."""
    return _state["real_properties"](0).name


def keep_real_gpu_for_compilers() -> None:
    """Give Triton and torch.compile the real capability back, so the kernels they build run on this GPU."""
    real = _state["real_capability"]
    import torch._dynamo.device_interface as device_interface

    major, minor = real()
    device_interface.CudaInterface.get_compute_capability = staticmethod(lambda device=None: major * 10 + minor)
    try:
        import triton
    except ImportError:
        return
    triton.runtime.driver.active.get_device_capability = real


def emulate(env: dict[str, str] | None = None) -> list[str]:
    """Apply the emulation if SMOL_EMULATE_T4 asks for it and a CUDA GPU is present; returns what changed (printed)."""
    if not asked(env) or active():
        return []
    loaded = [name for name in MUST_COME_AFTER if name in sys.modules]
    if loaded:
        raise RuntimeError(
            f"{ENV_VAR}=1 must take effect before {', '.join(loaded)} is imported. Restart the kernel (Colab: "
            "Runtime -> Restart session) and run the notebook from the top."
        )
    import torch

    if not torch.cuda.is_available():
        print(f"{ENV_VAR}=1: no CUDA GPU here, nothing to emulate (the run stays on the CPU).")
        return []
    changes = patch_torch(torch)
    keep_real_gpu_for_compilers()
    for line in changes:
        print(f"{ENV_VAR}=1: {line}")
    return changes
