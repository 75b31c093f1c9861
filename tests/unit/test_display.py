"""Tables of rows: HTML in Jupyter, text elsewhere."""

from helpers import display


def test_html_table_escapes_text_and_keeps_one_row_per_dict():
    rows = [{"prompt": "Q1", "after": "c"}, {"prompt": "Q2", "after": "<d>\nline 2"}]
    html = display.html_table(rows)
    assert html.count("<tr>") == 3 and html.count("<th ") == 2 and html.count("<td ") == 4
    assert "&lt;d&gt;\nline 2" in html and "<d>" not in html
    assert display.html_table([]) == "<p>(no rows)</p>"


def test_show_table_prints_text_outside_jupyter(capsys):
    display.show_table([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert capsys.readouterr().out == "a: 1 | b: x\na: 2 | b: y\n"
