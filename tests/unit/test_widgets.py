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


def test_generator_for_real_model(smol):
    model, tokenizer = smol
    answer = widgets.generator_for(model, tokenizer)("What is the capital of France?", 12, 0.0)
    assert "Paris" in answer
