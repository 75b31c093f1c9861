"""TRL's fused LM head computed in torch, for the plain engine off CUDA.

TRL 1.15's trainers score tokens through a fused LM head whose Triton kernel (trl/kernels/chunked_logprob.py) runs
only on CUDA: on a CPU it fails ("0 active drivers"), and where Triton is missing (macOS, Windows) it is None. TRL 1.16
falls back to torch off CUDA/XPU, but Unsloth 2026.10.9 pins trl<=1.15.0. So off CUDA `use_for` puts
`torch_lm_head_logprobs`, the same per-token quantities in plain torch, in place of that kernel.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

TOKEN_CHUNK = 1024  # tokens per LM-head tile: 1024 x 49,152 float32 logits = 192 MB


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


def use_for(device: str) -> bool:
    """On `device` other than CUDA, make TRL's fused LM head compute in torch (torch_lm_head_logprobs) instead of its
    Triton kernel; returns True when it did. TRL 1.16 does the same by itself, so any other TRL is left alone."""
    if device == "cuda":
        return False
    if importlib.metadata.version("trl") != "1.15.0":
        return False
    import trl.trainer.utils as trl_utils

    trl_utils._ChunkedLogProbFunction = TorchLMHeadLogProb
    return True
