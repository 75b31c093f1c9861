"""The plain engine's stand-ins for Unsloth's calls, on transformers + PEFT + TRL (helpers.engine chooses the engine):

- `PlainLanguageModel.from_pretrained` / `.get_peft_model` take FastLanguageModel's arguments and make
  AutoModelForCausalLM.from_pretrained and peft.get_peft_model(model, LoraConfig(...)) calls (float16 embedding
  copies train in float32, as Unsloth's do on a T4);
- `save_merged_16bit` writes what Unsloth's save_pretrained_merged(..., "merged_16bit") writes, through PEFT;
- `CPTTrainer` / `CPTConfig` give notebook 05 what UnslothTrainer / UnslothTrainingArguments give it: a second
  learning rate for the embedding copies (modules_to_save).

TRL's SFTTrainer, DPOTrainer and GRPOTrainer are used unchanged.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from helpers.engine import accelerator, bf16_supported, default_dtype


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
        model = get_peft_model(model, config)
        copies_in_float32(model)
        return model


def copies_in_float32(model: Any) -> int:
    """Unsloth's rule for the trainable copies of PEFT's modules_to_save (notebook 05's embed_tokens and lm_head): a
    float16 copy trains in float32 (unsloth 2026.10.9, models/llama.py, _offload_frozen_module_for_training and
    _unfreeze_modules_to_save: "Tesla T4 must use float32 and not float16; see #1200"). fp16 mixed precision's
    GradScaler refuses float16 gradients ("Attempting to unscale FP16 gradients"), and PEFT's autocast_adapter_dtype
    upcasts only the LoRA matrices. bfloat16 copies stay bfloat16, as in Unsloth. As in Unsloth's forward, such a copy
    takes its input in float32 and gives float16 out, so the float16 model around it also runs without autocast
    (evaluation, generate). Returns how many copies it changed."""
    import torch
    from peft.utils.other import ModulesToSaveWrapper

    changed = 0
    for wrapper in model.modules():
        if not isinstance(wrapper, ModulesToSaveWrapper):
            continue
        frozen = next(wrapper.original_module.parameters(), None)
        if frozen is None or frozen.dtype != torch.float16:
            continue
        for copy_ in wrapper.modules_to_save.values():
            for param in copy_.parameters():
                param.data = param.data.to(torch.float32)  # the same Parameter: a tie stays tied
            if not getattr(copy_, "_float32_copy", False):  # its hooks once, should this run again
                copy_.register_forward_pre_hook(_inputs_to_float32)
                copy_.register_forward_hook(_output_to_float16)
                copy_._float32_copy = True
                changed += 1
    return changed


def _inputs_to_float32(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    # lm_head's float16 hidden states (Unsloth: self.lm_head(hidden_states.to(lm_head dtype))); token ids stay
    import torch

    return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def _output_to_float16(module: Any, args: tuple[Any, ...], output: Any) -> Any:
    # the model's own dtype out (Unsloth: inputs_embeds.to(model dtype), logits.to(model dtype))
    import torch

    return output.half() if isinstance(output, torch.Tensor) and output.is_floating_point() else output


def save_merged_16bit(model: Any, tokenizer: Any, folder: str | Path) -> Path:
    """What Unsloth's model.save_pretrained_merged(folder, tokenizer, save_method="merged_16bit") writes, through
    PEFT: the LoRA update folded into a copy of the weights (merge_and_unload), saved in bfloat16 (float16 on a GPU
    without it) with the tokenizer. The PEFT model itself keeps its adapter."""
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
    # CPTConfig and CPTTrainer subclass TRL's classes, so they are built on first use (importing helpers.plain
    # must not import trl: Unsloth has to come first).
    if attr in ("CPTConfig", "CPTTrainer"):
        config_cls, trainer_cls = _cpt_classes()
        globals().update(CPTConfig=config_cls, CPTTrainer=trainer_cls)
        return globals()[attr]
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
