from helpers import widgets


def test_playground_callback_runs_every_generator():
    calls = []

    def echo(prompt, max_new_tokens, temperature):
        calls.append((prompt, max_new_tokens, temperature))
        return prompt.upper()

    pg = widgets.Playground({"base": echo, "trained": lambda p, n, t: p[::-1]}, prompt="abc", max_new_tokens=16)
    answers = pg.on_click()
    assert answers == {"base": "ABC", "trained": "cba"}
    assert calls == [("abc", 16, 0.0)]
    assert "ABC" in pg.output.value and "cba" in pg.output.value


def test_playground_button_is_wired_and_empty_prompt_is_refused():
    pg = widgets.Playground({"only": lambda p, n, t: "x"})
    pg.button.click()  # what a click in the browser does
    assert "Type a prompt first" in pg.output.value
    pg.prompt.value = "hi"
    pg.temperature.value = 0.7
    pg.button.click()
    assert "<td" in pg.output.value and ">x<" in pg.output.value


def test_show_answers_once_and_carries_the_table_for_pages_without_widgets(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda data, raw=False: shown.append((data, raw)))
    pg = widgets.Playground({"base": lambda p, n, t: "ONE", "trained": lambda p, n, t: "TWO"}, prompt="q")
    assert pg.show() is None  # nothing more for the cell to print
    [(data, raw)] = shown
    assert raw and data["application/vnd.jupyter.widget-view+json"]["model_id"] == pg.widget.model_id
    assert "ONE" in data["text/html"] and "TWO" in data["text/html"] and "ONE" in pg.output.value
    assert data["text/plain"] == "Playground(base, trained)"


def test_generator_for_real_model(smol):
    model, tokenizer = smol
    answer = widgets.generator_for(model, tokenizer)("What is the capital of France?", 12, 0.0)
    assert "Paris" in answer


def test_generator_for_with_disable_adapter_answers_as_the_base_model(tokenizer):
    # Catches: disable_adapter=True ignored (the answer would be the adapted model's), the adapter left off after
    # the call, and an adapter-off path that is not the base model (compared with an independent copy of it).
    import copy

    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    base = LlamaForCausalLM(config).eval()
    base_copy = copy.deepcopy(base)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    with torch.no_grad():  # a trained adapter: B away from PEFT's zero init
        for name, weight in model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0, 1.0)
    prompt = "What is the capital of France?"
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    with torch.no_grad():
        adapted_logits, base_logits = model(input_ids=ids).logits, base_copy(input_ids=ids).logits
    assert not torch.allclose(adapted_logits, base_logits), "the adapter does nothing"
    as_base = widgets.generator_for(model, tokenizer, disable_adapter=True)(prompt, 12, 0.0)
    adapted = widgets.generator_for(model, tokenizer)(prompt, 12, 0.0)
    assert as_base == widgets.generator_for(base_copy, tokenizer)(prompt, 12, 0.0)
    assert adapted != as_base and as_base.strip()
    assert widgets.generator_for(model, tokenizer)(prompt, 12, 0.0) == adapted  # the adapter is back on
