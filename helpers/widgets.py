"""An ipywidgets playground: one prompt, several models' answers side by side."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

from helpers.display import html_table
from helpers.generation import comparison_rows, generate

Generator = Callable[[str, int, float], str]


def generator_for(model: Any, tokenizer: Any, disable_adapter: bool = False, chat: bool = True) -> Generator:
    """A (prompt, max_new_tokens, temperature) -> answer function; disable_adapter=True answers as the base model."""

    def answer(prompt: str, max_new_tokens: int, temperature: float) -> str:
        context = model.disable_adapter() if disable_adapter else nullcontext()
        with context:
            return generate(model, tokenizer, [prompt], max_new_tokens, temperature, chat=chat)[0]

    return answer


class Playground:
    """Prompt box, max-new-tokens and temperature controls, a Generate button, answers side by side."""

    def __init__(self, generators: dict[str, Generator], prompt: str = "", max_new_tokens: int = 64) -> None:
        import ipywidgets as w

        if not generators:
            raise ValueError("give at least one generator, e.g. {'base': ..., 'trained': ...}")
        self.generators = generators
        self.prompt = w.Textarea(
            value=prompt, placeholder="Type a prompt", layout=w.Layout(width="100%", height="80px")
        )
        self.max_new_tokens = w.IntSlider(value=max_new_tokens, min=8, max=512, step=8, description="max tokens")
        self.temperature = w.FloatSlider(value=0.0, min=0.0, max=1.5, step=0.1, description="temperature")
        self.button = w.Button(description="Generate", button_style="primary", icon="play")
        self.output = w.HTML()
        self.button.on_click(self.on_click)
        self.widget = w.VBox([self.prompt, w.HBox([self.max_new_tokens, self.temperature, self.button]), self.output])

    def on_click(self, _button: Any = None) -> dict[str, str]:
        """The Generate button's callback: answer with every model and show the table."""
        text = self.prompt.value.strip()
        if not text:
            self.output.value = "<p><b>Type a prompt first.</b></p>"
            return {}
        self.output.value = "<p><i>generating...</i></p>"
        answers = {
            name: fn(text, self.max_new_tokens.value, self.temperature.value) for name, fn in self.generators.items()
        }
        self.output.value = html_table(comparison_rows([text], {k: [v] for k, v in answers.items()}))
        return answers

    def show(self) -> None:
        """Answer the prompt shown once, then display the controls with that answer table in them. A page without
        live widgets (a run without a browser, an executed copy on GitHub) shows the same table as HTML instead."""
        from IPython.display import display

        self.on_click()
        display(self.bundle(), raw=True)

    def bundle(self) -> dict[str, Any]:
        """The display data: the live widget where the front end renders widgets, else the answer table as HTML."""
        view = {"version_major": 2, "version_minor": 0, "model_id": self.widget.model_id}
        note = "<p><i>The playground's controls need a live Jupyter or Colab session; these are its answers.</i></p>"
        return {
            "application/vnd.jupyter.widget-view+json": view,
            "text/html": note + self.output.value,
            "text/plain": f"Playground({', '.join(self.generators)})",
        }

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
