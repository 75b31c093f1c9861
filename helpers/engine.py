"""Which engine trains: Unsloth, or plain transformers + PEFT + TRL where Unsloth cannot run; and the dtype and mixed
precision either engine trains in on this machine.

Unsloth needs Linux, or Windows with an NVIDIA GPU; it has no macOS backend. Elsewhere, or with SMOL_ENGINE=plain,
the notebooks run on the libraries Unsloth builds on, through the same calls (helpers/plain.py). Off CUDA the plain
engine also puts TRL's fused LM head into torch (helpers/torch_lm_head.py).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Any

from helpers import runtime, torch_lm_head

ENGINES = ("auto", "unsloth", "plain")
ENV_VAR = "SMOL_ENGINE"
LABELS = {"unsloth": "Unsloth", "plain": "plain transformers + PEFT + TRL"}

_chosen: str | None = None


def accelerator() -> str:
    """Where the plain engine computes: 'cuda', 'mps' (Apple silicon) or 'cpu'."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    return "mps" if runtime.has_mps() else "cpu"


def requested(env: dict[str, str] | None = None) -> str:
    """SMOL_ENGINE as asked for: 'auto' (the default), 'unsloth' or 'plain'; anything else raises ValueError."""
    value = (os.environ if env is None else env).get(ENV_VAR, "").strip().lower() or "auto"
    if value not in ENGINES:
        raise ValueError(f"{ENV_VAR}={value!r} is not understood: use one of {', '.join(ENGINES)}, or unset it.")
    return value


def unsloth_blocker(platform: str | None = None, has_cuda: bool | None = None) -> str | None:
    """Why Unsloth cannot run here (None when nothing known stops it): macOS, Windows without an NVIDIA GPU, or not
    installed. Does not import it."""
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return "Unsloth has no macOS backend (no Apple-silicon / MPS support)"
    if platform == "win32":
        if has_cuda is None:
            import torch

            has_cuda = torch.cuda.is_available()
        if not has_cuda:
            return "Unsloth needs an NVIDIA GPU on Windows, and torch sees none"
    if importlib.util.find_spec("unsloth") is None:
        return "unsloth is not installed"
    return None


# Two warnings that libraries print while Unsloth and PEFT import, about features these notebooks never use: torch's
# pytree registry says torchao registers its enums the old way, and bitsandbytes' CPU backend says the optional
# `kernels` package for 4-bit CPU matmuls is missing (no notebook loads in 4 bits on a CPU). Dropped by logger and
# message only; every other line of those loggers still shows.
QUIET = {
    "torch.utils._pytree": "is an Enum subclass and is now natively supported by torch.compile",
    "bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward",
}


class _Drop(logging.Filter):
    """Drops the records of one logger whose message contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_import_warnings() -> None:
    """Install the QUIET filters (once per process)."""
    for name, text in QUIET.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Drop) and f.text == text for f in logger.filters):
            logger.addFilter(_Drop(text))


def choose(env: dict[str, str] | None = None, unfit: str | None = None) -> str:
    """Pick the engine for this process, import Unsloth when it is the one, print which and why; returns 'unsloth'
    or 'plain'. Call it before importing transformers or trl (Unsloth patches them on import). `unfit`: why Unsloth
    does not fit this process even where it imports (a recipe's launch: the CPU, DeepSpeed, FSDP); with SMOL_ENGINE
    unset ("auto") the plain engine then runs for that reason, without trying Unsloth."""
    global _chosen
    quiet_import_warnings()
    asked = requested(env)
    if asked == "plain":
        if "unsloth" in sys.modules:
            raise RuntimeError(
                f"{ENV_VAR}=plain, but unsloth is already imported in this process (it patches transformers, PEFT "
                "and TRL): restart the kernel, then run the notebook from the top."
            )
        engine, why = "plain", f"{ENV_VAR}=plain is set"
    else:
        blocker = unfit if unfit is not None and asked == "auto" else unsloth_blocker()
        if blocker is None:
            try:
                import unsloth  # noqa: F401  (before transformers and trl)
            except Exception as error:  # noqa: BLE001  (Unsloth raises NotImplementedError, ImportError, RuntimeError)
                blocker = f"import unsloth failed: {type(error).__name__}: {error}"
        if blocker is not None and asked == "unsloth":
            raise RuntimeError(f"{ENV_VAR}=unsloth, but {blocker}. Unset {ENV_VAR} to use the plain engine.")
        if blocker is None:
            engine, why = "unsloth", f"it imports here ({ENV_VAR}={asked})"
        else:
            engine, why = "plain", blocker
    if engine == "plain":
        torch_lm_head.use_for(accelerator())
    _chosen = engine
    print(f"engine: {LABELS[engine]}\n  because {why}")
    if engine == "plain" and asked == "auto" and unfit is None and accelerator() == "cuda":
        print(fallback_warning(why))
    return engine


def fallback_warning(why: str) -> str:
    """The banner choose() prints when Unsloth was expected on an NVIDIA GPU but the plain engine runs instead."""
    rule = "!" * 100
    return "\n".join([
        rule,
        "WARNING: Unsloth did not load on this NVIDIA GPU, so this notebook trains on plain transformers + PEFT + TRL.",
        f"  Reason: {why}",
        "  It still runs, with the same dtype and mixed precision (engine.mixed_precision), but slower and with more",
        "  memory than with Unsloth. To fix it: Runtime -> Restart session, run the install cell again and read its",
        f"  output. To stop here instead of falling back: set {ENV_VAR}=unsloth.",
        rule,
    ])


def name() -> str:
    """The engine this process chose (choose), else 'unsloth' when Unsloth is imported, else 'plain'."""
    return _chosen or ("unsloth" if "unsloth" in sys.modules else "plain")


def describe() -> dict[str, Any]:
    """What results.json records about the engine: its name and whether unsloth was imported in this process."""
    return {"engine": name(), "unsloth_imported": "unsloth" in sys.modules}


# --- dtype and mixed precision --------------------------------------------------------------------------


def bf16_supported() -> bool:
    """True on an NVIDIA GPU that computes in bfloat16 in hardware: compute capability 8.0 or newer (A100, L4, H100).
    torch.cuda.is_bf16_supported() also answers True on a T4 (7.5), where bfloat16 is emulated and slow, and
    transformers and TRL take that answer; once Unsloth has imported it answers False there. The capability itself
    gives one answer to both engines (and to SMOL_EMULATE_T4, which reports 7.5)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def default_dtype(device: str | None = None) -> Any:
    """Unsloth's dtype=None, decided from the real capability: bfloat16 on a GPU that has it, float16 on one without
    (a T4); float32 on a CPU or an Apple GPU. `device` defaults to this machine's accelerator()."""
    import torch

    device = accelerator() if device is None else device
    if device == "cuda":
        return torch.bfloat16 if bf16_supported() else torch.float16
    return torch.float32


def mixed_precision(dtype: Any, device: str | None = None) -> tuple[bool, bool]:
    """(bf16, fp16) for a trainer config of a model whose weights are in `dtype`: the choice Unsloth's trainers make,
    written out so that the plain engine makes it too.

    - 16-bit weights train in their own type: bfloat16 -> bf16; float16 (a T4) -> fp16, with loss scaling.
    - float32 weights (notebook 01) get bfloat16 autocast where the device has bfloat16 (a CPU, an Ampere or newer
      GPU, an Apple GPU on macOS 14 or newer), and none elsewhere: on a T4 they train in float32 throughout.

    Leaving both unset is not the same: TRL's configs then default to bf16=True, which a T4 emulates slowly, or
    which transformers refuses ("Your setup doesn't support bf16/gpu") once Unsloth has patched torch."""
    import torch

    device = accelerator() if device is None else device
    if device == "cuda" and dtype in (torch.bfloat16, torch.float16):
        return dtype == torch.bfloat16, dtype == torch.float16
    if device == "cuda":
        return bf16_supported(), False
    if device == "mps":
        return bool(torch.backends.mps.is_macos_or_newer(14, 0)), False
    return True, False
