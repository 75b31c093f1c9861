"""Which engine trains: Unsloth, or plain transformers + PEFT + TRL where Unsloth cannot run.

Unsloth needs Linux, or Windows with an NVIDIA GPU; it has no macOS backend. Elsewhere, or with SMOL_ENGINE=plain,
the notebooks run on the libraries Unsloth builds on, through the same calls:

- `PlainLanguageModel.from_pretrained` / `.get_peft_model` take FastLanguageModel's arguments and make
  AutoModelForCausalLM.from_pretrained and peft.get_peft_model(model, LoraConfig(...)) calls;
- TRL's SFTTrainer, DPOTrainer and GRPOTrainer are used unchanged;
- `CPTTrainer` / `CPTConfig` give notebook 05 what UnslothTrainer / UnslothTrainingArguments give it: a second
  learning rate for the embedding copies (modules_to_save).

One gap is filled on the way. TRL 1.15's trainers score tokens through a fused LM head whose Triton kernel
(trl/kernels/chunked_logprob.py) runs only on CUDA: on a CPU it fails ("0 active drivers"), and where Triton is
missing (macOS, Windows) it is None. TRL 1.16 falls back to torch off CUDA/XPU, but Unsloth 2026.10.9 pins
trl<=1.15.0. So off CUDA the plain engine puts `torch_lm_head_logprobs`, the same per-token quantities in plain torch,
in place of that kernel (`use_torch_lm_head`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENGINES = ("auto", "unsloth", "plain")
ENV_VAR = "SMOL_ENGINE"
LABELS = {"unsloth": "Unsloth", "plain": "plain transformers + PEFT + TRL"}
TOKEN_CHUNK = 1024  # tokens per LM-head tile of the torch fallback: 1024 x 49,152 float32 logits = 192 MB

_chosen: str | None = None


def accelerator() -> str:
    """Where the plain engine computes: 'cuda', 'mps' (Apple silicon) or 'cpu'."""
    import torch

    from helpers import runtime

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


def choose(env: dict[str, str] | None = None) -> str:
    """Pick the engine for this process, import Unsloth when it is the one, print which and why; returns 'unsloth'
    or 'plain'. Call it before importing transformers or trl (Unsloth patches them on import)."""
    global _chosen
    asked = requested(env)
    if asked == "plain":
        if "unsloth" in sys.modules:
            raise RuntimeError(
                f"{ENV_VAR}=plain, but unsloth is already imported in this process (it patches transformers, PEFT "
                "and TRL): restart the kernel, then run the notebook from the top."
            )
        engine, why = "plain", f"{ENV_VAR}=plain is set"
    else:
        blocker = unsloth_blocker()
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
        use_torch_lm_head()
    _chosen = engine
    print(f"engine: {LABELS[engine]}\n  because {why}")
    if engine == "plain" and asked == "auto" and accelerator() == "cuda":
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


# --- the plain engine's FastLanguageModel --------------------------------------------------------------------------


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


class PlainLanguageModel:
    """FastLanguageModel's two calls on plain transformers + PEFT (same arguments; Unsloth-only ones are ignored)."""

    @staticmethod
    def from_pretrained(
        model_name: str,
        max_seq_length: int = 2048,
        dtype: Any = None,
        load_in_4bit: bool = False,
        full_finetuning: bool = False,
        **kwargs: Any,
    ) -> tuple[Any, Any]:
        """(model, tokenizer): AutoModelForCausalLM.from_pretrained on this machine's accelerator, and its tokenizer
        with model_max_length = max_seq_length. Every weight is trainable, as with Unsloth's full_finetuning=True;
        get_peft_model freezes the base weights."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if load_in_4bit:
            raise ValueError("load_in_4bit needs bitsandbytes on an NVIDIA GPU; use load_in_4bit=False here.")
        device = accelerator()
        options = {k: v for k, v in kwargs.items() if k in ("revision", "token", "attn_implementation")}
        model = AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype or default_dtype(device), **options)
        model.to(device)
        tokenizer = AutoTokenizer.from_pretrained(model_name)
        tokenizer.model_max_length = max_seq_length
        return model, tokenizer

    @staticmethod
    def get_peft_model(
        model: Any,
        r: int = 16,
        target_modules: list[str] | None = None,
        lora_alpha: int = 16,
        lora_dropout: float = 0.0,
        bias: str = "none",
        use_gradient_checkpointing: bool | str = "unsloth",
        random_state: int = 3407,
        modules_to_save: list[str] | None = None,
        use_rslora: bool = False,
        **kwargs: Any,
    ) -> Any:
        """peft.get_peft_model(model, LoraConfig(...)): the same adapters FastLanguageModel.get_peft_model adds, with
        transformers' gradient checkpointing for use_gradient_checkpointing="unsloth" (Unsloth's own variant)."""
        import torch
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(random_state)  # the LoRA A matrices start random (B at zero)
        if use_gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        config = LoraConfig(
            r=r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=target_modules,
            bias=bias,
            modules_to_save=modules_to_save,
            use_rslora=use_rslora,
            task_type="CAUSAL_LM",
        )
        return get_peft_model(model, config)


def save_merged_16bit(model: Any, tokenizer: Any, folder: str | Path) -> Path:
    """What Unsloth's model.save_pretrained_merged(folder, tokenizer, save_method="merged_16bit") writes, through
    PEFT: the LoRA update folded into a copy of the weights (merge_and_unload), saved in bfloat16 (float16 on a GPU
    without it) with the tokenizer. The PEFT model itself keeps its adapter."""
    import copy

    import torch

    folder = Path(folder)
    dtype = torch.float16 if accelerator() == "cuda" and not bf16_supported() else torch.bfloat16
    merged = copy.deepcopy(model).merge_and_unload().to(dtype)
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# --- notebook 05's two learning rates ------------------------------------------------------------------------------


def _sft() -> tuple[Any, Any]:
    from trl import SFTConfig, SFTTrainer

    return SFTConfig, SFTTrainer


def embedding_parameters(model: Any) -> tuple[list[Any], list[Any]]:
    """(embedding copies, everything else) among the trainable parameters: the copies are PEFT's modules_to_save
    ("...modules_to_save.default.weight"), which UnslothTrainer trains at embedding_learning_rate."""
    embeddings, rest = [], []
    for param_name, param in model.named_parameters():
        if param.requires_grad:
            (embeddings if param_name.endswith("modules_to_save.default.weight") else rest).append(param)
    return embeddings, rest


def _cpt_classes() -> tuple[type, type]:
    SFTConfig, SFTTrainer = _sft()

    @dataclass
    class CPTConfig(SFTConfig):
        """SFTConfig plus embedding_learning_rate (UnslothTrainingArguments' extra field)."""

        embedding_learning_rate: float | None = field(
            default=None, metadata={"help": "learning rate of the embedding copies (None: learning_rate)"}
        )

    class CPTTrainer(SFTTrainer):
        """SFTTrainer whose optimizer trains the embedding copies at args.embedding_learning_rate (UnslothTrainer's
        one change); the rest at learning_rate."""

        def create_optimizer(self, model: Any = None) -> Any:
            if self.optimizer is None:
                from transformers import Trainer

                opt_model = self.model if model is None else model
                embeddings, rest = embedding_parameters(opt_model)
                rate = getattr(self.args, "embedding_learning_rate", None) or self.args.learning_rate
                optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, opt_model)
                groups = [{"params": rest, "weight_decay": self.args.weight_decay}]
                if embeddings:
                    groups.append({"params": embeddings, "weight_decay": self.args.weight_decay, "lr": rate})
                self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer

    return CPTConfig, CPTTrainer


def __getattr__(attr: str) -> Any:
    # CPTConfig and CPTTrainer subclass TRL's classes, so they are built on first use (importing helpers.engine
    # must not import trl: Unsloth has to come first).
    if attr in ("CPTConfig", "CPTTrainer"):
        config_cls, trainer_cls = _cpt_classes()
        globals().update(CPTConfig=config_cls, CPTTrainer=trainer_cls)
        return globals()[attr]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")


# --- TRL's fused LM head, in torch ---------------------------------------------------------------------------------


def _tile(hidden, weight, bias, targets, temperature, softcap, logit_scale, outputs):
    """One tile's (log_probs, entropy, log_sum_sq_probs, mean_logits, is_top1), None where not asked for."""
    import torch

    z = hidden @ weight.t()
    if bias is not None:
        z = z + bias
    z = z.float() * logit_scale
    if softcap is not None:
        z = softcap * torch.tanh(z / softcap)
    z = z / temperature
    log_p = torch.log_softmax(z, dim=-1)
    return (
        log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1),
        -(log_p.exp() * log_p).sum(-1) if "entropy" in outputs else None,
        torch.logsumexp(2 * log_p, dim=-1) if "log_sum_sq_probs" in outputs else None,
        z.mean(-1) if "mean_logits" in outputs else None,
        z.argmax(-1) == targets if "is_top1" in outputs else None,  # the first maximum, as TRL's kernel counts it
    )


def torch_lm_head_logprobs(
    hidden: Any,
    weight: Any,
    bias: Any,
    targets: Any,
    temperature: float,
    chunk_size: int = 0,
    final_logit_softcapping: float | None = None,
    logit_scale: float = 1.0,
    outputs: tuple[str, ...] = ("log_probs",),
) -> tuple[Any, Any, Any, Any, Any]:
    """TRL 1.15's ChunkedLogProbFunction.apply in torch: per-token (log_probs, entropy, log_sum_sq_probs,
    mean_logits, is_top1) of softmax((hidden @ weight.T + bias) * logit_scale, softcapped, / temperature) at
    `targets`, None for what `outputs` does not ask for. Tiles of TOKEN_CHUNK tokens, each recomputed in the backward
    pass (torch.utils.checkpoint), so the full logits are never held at once. `chunk_size` (the kernel's vocabulary
    tile) is accepted and unused."""
    import torch
    from torch.utils.checkpoint import checkpoint

    grad = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)
    pieces = []
    for start in range(0, max(hidden.shape[0], 1), TOKEN_CHUNK):  # one (empty) tile when there is no token
        args = (hidden[start : start + TOKEN_CHUNK], weight, bias, targets[start : start + TOKEN_CHUNK], temperature,
                final_logit_softcapping, logit_scale, outputs)
        pieces.append(checkpoint(_tile, *args, use_reentrant=False) if grad else _tile(*args))
    return tuple(None if first is None else torch.cat([p[i] for p in pieces]) for i, first in enumerate(pieces[0]))


class TorchLMHeadLogProb:
    """Stands in for trl.trainer.utils._ChunkedLogProbFunction (which is called as `.apply(...)`)."""

    apply = staticmethod(torch_lm_head_logprobs)


def use_torch_lm_head(device: str | None = None) -> bool:
    """Off CUDA, make TRL's fused LM head compute in torch (torch_lm_head_logprobs) instead of its Triton kernel;
    returns True when it did. TRL 1.16 does the same by itself, so any other TRL is left alone."""
    device = accelerator() if device is None else device
    if device == "cuda":
        return False
    import importlib.metadata

    if importlib.metadata.version("trl") != "1.15.0":
        return False
    import trl.trainer.utils as trl_utils

    trl_utils._ChunkedLogProbFunction = TorchLMHeadLogProb
    return True
