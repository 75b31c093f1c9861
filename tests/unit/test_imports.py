"""helpers' imports form a DAG (a module can be imported alone, in any order), at the top of each module; inside a
function only the heavy or optional libraries below, each for its reason."""

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parents[2] / "helpers"
# Imported where used, never at a module's top: why each one waits.
DEFERRED = {
    "torch": "seconds to import; `helpers.t4` must patch it before Unsloth, and the install cell runs before it exists",
    "unsloth": "patches torch and transformers at import: the notebook decides when (after the T4 patch)",
    "unsloth_zoo": "comes with unsloth",
    "transformers": "heavy; must come after `import unsloth`",
    "trl": "heavy; must come after `import unsloth`",
    "peft": "heavy; must come after `import unsloth`",
    "datasets": "heavy; only the hub loaders need it",
    "tokenizers": "only vocabulary extension (notebook 05) trains a tokenizer",
    "triton": "GPU only",
    "deepspeed": "optional: only a DeepSpeed launch has it",
    "IPython": "only inside Jupyter",
    "ipywidgets": "only inside Jupyter",
    "psutil": "Windows only (peak working set), where `resource` is missing",
}


def imports(tree: ast.AST, folder: Path = HELPERS) -> list[tuple[ast.AST, str]]:
    """(node, top-level module name) of every import in `tree`; helpers modules as 'helpers.<module>'."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, a.name if a.name.startswith("helpers.") else a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "helpers":
            found += [(node, f"helpers.{a.name}") for a in node.names if (folder / f"{a.name}.py").exists()]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node, ".".join(node.module.split(".")[:2]) if node.module.startswith("helpers.")
                          else node.module.split(".")[0]))
    return found


def graph(folder: Path = HELPERS) -> dict[str, set[str]]:
    """{module: the helpers modules it imports, at any depth}."""
    return {p.stem: {name.split(".")[1] for _, name in imports(ast.parse(p.read_text(encoding="utf-8")), folder)
                     if name.startswith("helpers.")}
            for p in sorted(folder.glob("*.py"))}


def test_helpers_imports_form_a_dag():
    order = list(TopologicalSorter(graph()).static_order())  # raises CycleError on a circle
    assert set(order) == {p.stem for p in HELPERS.glob("*.py")}


def test_all_names_the_helpers_modules():
    import helpers

    modules = sorted(p.stem for p in HELPERS.glob("*.py") if p.stem != "__init__")
    assert helpers.__all__ == ["ROOT", "DATA_DIR", *modules]


def test_every_name_in_all_imports():
    import helpers

    namespace: dict[str, object] = {}
    exec("from helpers import *", namespace)  # a name in __all__ without its module raises AttributeError
    assert set(helpers.__all__) <= set(namespace)


def test_a_circle_is_caught(tmp_path):
    (tmp_path / "a.py").write_text("from helpers import b\n")
    (tmp_path / "b.py").write_text("from helpers.a import x\n")
    circle = {name: {m for m in deps if m in ("a", "b")} for name, deps in graph(tmp_path).items()}
    assert circle == {"a": {"b"}, "b": {"a"}}
    with pytest.raises(CycleError):
        list(TopologicalSorter(circle).static_order())


@pytest.mark.parametrize("path", sorted(HELPERS.glob("*.py")), ids=lambda p: p.stem)
def test_only_heavy_libraries_are_imported_inside_functions(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for node in tree.body for n in ast.walk(node)
           if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    late = sorted({name for node, name in imports(tree) if id(node) not in top and name not in DEFERRED})
    assert not late, f"{path.name}: import {', '.join(late)} at the top of the module"
