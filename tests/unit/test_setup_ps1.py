"""setup_venv.ps1, the Windows twin of setup_venv.sh, read with a PowerShell grammar (no PowerShell runs here).

The script is parsed with tree-sitter-powershell and checked for: no parse errors; the same subcommands as
setup_venv.sh; the same pip, ipykernel and nbconvert arguments (and the same other calls of the venv's programs);
every native program run through Invoke-Checked, which throws on a non-zero exit code; every change of an
environment variable or of the location undone in a `finally`; no script-level param() block (it would bring
PowerShell's common parameters, `test -v` becoming -Verbose); a usage line with exit code 2.

Documented differences: `colab-sim` is Linux only (tools/colab_sim/ builds venv-colab-sim/bin/python and resolves
manylinux wheels), and so is `gpu-check` (tools/gpu_check.py runs on a lent Linux GPU machine); on Windows each
subcommand exists, says so and exits 2 (LINUX_ONLY below).

Each check is a function of the script's text, so that the tests at the end can show it failing on a broken copy.
The grammar reads a subset of PowerShell: the script keeps to it (e.g. `1gb`, not `1GB`; one switch clause a line).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

ROOT = Path(__file__).resolve().parents[2]
PS1 = ROOT / "setup_venv.ps1"
SH = ROOT / "setup_venv.sh"
PARSER = Parser(Language(tree_sitter_powershell.language()))

CHECKER = "invoke-checked"  # the one function allowed to start a native program; it must check $LASTEXITCODE
PROBES = {"get-pythonversion"}  # functions where a failed program is an answer ("not this Python"), not an error
LINUX_ONLY = {"colab-sim": "tools.colab_sim", "gpu-check": "tools.gpu_check"}  # subcommand: its tool in the .sh
VERB_NOUN = re.compile(r"^[A-Za-z]+-[A-Za-z]+$")  # cmdlets; anything else that is not a script function is native
LAUNCHERS = {"start-process", "invoke-expression", "invoke-item"}  # start programs without setting $LASTEXITCODE
LOCATION_COMMANDS = {"set-location", "push-location", "cd", "sl", "chdir", "pushd"}
LOCATION_RESTORES = {"set-location", "pop-location", "popd"}
ENV_VARIABLE = re.compile(r"^\$\{?env:(\w+)\}?$", re.IGNORECASE)
ENV_PATH = re.compile(r"^['\"]?env:(\w+)['\"]?$", re.IGNORECASE)
ENV_ITEM_COMMANDS = {"set-item", "new-item", "remove-item", "clear-item"}
VENV_PROGRAM_PS = re.compile(r"Scripts[\\/](\w+)(?:\.exe)?$", re.IGNORECASE)
VENV_PROGRAM_SH = re.compile(r"^\$VENV_DIR/bin/(\w+)$")
EXPR = "<expr>"  # an argument only a run can tell (a variable, a computed value)


# --- the grammar -----------------------------------------------------------------------------------------------------


def parse(text: str) -> Node:
    return PARSER.parse(text.encode()).root_node


def walk(node: Node):
    yield node
    for child in node.children:
        yield from walk(child)


def src(node: Node) -> str:
    return node.text.decode()


def where(node: Node) -> str:
    return f"line {node.start_point[0] + 1}: {(src(node).splitlines() or [node.type])[0].strip()}"


def ancestors(node: Node):
    while node.parent is not None:
        node = node.parent
        yield node


def function_of(node: Node) -> str | None:
    """The (lower-case) name of the function the node is in; None at script level."""
    for parent in ancestors(node):
        if parent.type == "function_statement":
            return function_name(parent)
    return None


def function_name(function: Node) -> str:
    return next(src(c) for c in function.named_children if c.type == "function_name").lower()


def in_finally(node: Node) -> bool:
    return any(parent.type == "finally_clause" for parent in ancestors(node))


def unwrap(node: Node) -> Node:
    """Down the chains of one-child wrappers (pipeline > ... > unary_expression > variable) to what matters."""
    while node.type not in ("string_literal", "array_expression", "parenthesized_expression"):
        children = [c for c in node.named_children if c.type != "comment"]
        if len(children) != 1:
            break
        node = children[0]
    return node


def string_value(node: Node) -> str:
    """A string literal's value; EXPR for one with variables or subexpressions in it."""
    literal = node.named_children[0] if node.type == "string_literal" else node
    text = src(literal)
    if literal.type == "verbatim_string_characters":
        return text[1:-1].replace("''", "'")
    if literal.type == "expandable_string_literal" and not literal.named_children:
        return text[1:-1]
    return EXPR


def values(node: Node) -> list[str]:
    """The list of arguments an expression builds (@("-m", "pip") + $Rest), EXPR where only a run can tell."""
    node = unwrap(node)
    if node.type == "string_literal":
        return [string_value(node)]
    if node.type in ("array_expression", "parenthesized_expression", "statement_list", "array_literal_expression"):
        return [v for child in node.named_children if child.type != "comment" for v in values(child)]
    if node.type == "additive_expression" and any(c.type == "+" for c in node.children):
        return [v for child in node.named_children if child.type != "comment" for v in values(child)]
    if node.type in ("generic_token", "decimal_integer_literal"):
        return [src(node)]
    return [EXPR]


def command_name(command: Node) -> str:
    name = command.child_by_field_name("command_name")
    return src(name) if name is not None else ""


def positional_arguments(command: Node) -> list[Node]:
    elements = command.child_by_field_name("command_elements")
    if elements is None:
        return []
    skip = ("command_argument_sep", "command_parameter", "redirection", "comment")
    return [c for c in elements.named_children if c.type not in skip]


def commands(root: Node, *names: str) -> list[Node]:
    wanted = {n.lower() for n in names}
    return [n for n in walk(root) if n.type == "command" and command_name(n).lower() in wanted]


def script_functions(root: Node) -> set[str]:
    return {function_name(n) for n in walk(root) if n.type == "function_statement"}


def top_level_switch_clauses(root: Node) -> dict[str, Node]:
    """{condition: clause} of the switch statements at script level (the subcommands; "default" included)."""
    clauses = {}
    for switch in (n for n in walk(root) if n.type == "switch_statement" and function_of(n) is None):
        for clause in (n for n in walk(switch) if n.type == "switch_clause"):
            condition = src(next(c for c in clause.named_children if c.type == "switch_clause_condition"))
            if len(condition) > 1 and condition[0] == condition[-1] and condition[0] in "'\"":
                condition = condition[1:-1]  # the grammar gives the condition as one token, quotes included
            clauses[condition] = clause
    return clauses


def assignments(root: Node) -> list[tuple[str, Node, Node]]:
    """(target as written, target node, value node) of every assignment (=, +=, ...)."""
    found = []
    for node in walk(root):
        if node.type == "assignment_expression":
            target = next(c for c in node.named_children if c.type == "left_assignment_expression")
            value = node.child_by_field_name("value")
            found.append((src(unwrap(target)), target, value))
    return found


def script_level_value(root: Node, variable: str) -> Node | None:
    for target, node, value in assignments(root):
        if target.lower() == variable.lower() and function_of(node) is None:
            return value
    return None


# --- setup_venv.sh, read as text -------------------------------------------------------------------------------------


def sh_subcommands(sh_text: str) -> set[str]:
    block = re.search(r"^case .*? in\n(.*?)^esac", sh_text, re.DOTALL | re.MULTILINE)
    assert block, "setup_venv.sh: no case ... esac block"
    patterns = re.findall(r"^\s*([\w-]+(?:\|[\w-]+)*)\)", block.group(1), re.MULTILINE)
    return {name for pattern in patterns for name in pattern.split("|")}


def sh_venv_calls(sh_text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(program, arguments) of each call of a program in the venv ("$VENV_DIR/bin/X"), in order."""
    calls = []
    for line in sh_text.splitlines():
        if line.lstrip().startswith("#") or "$VENV_DIR/bin/" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        segment: list[str] = []
        for token in [*lexer, ";"]:
            if token not in (";", ";;", "||", "&&", "|", "(", ")"):
                segment.append(token)
                continue
            while segment and (segment[0] in ("if", "then", "!", "{") or re.match(r"^\w+=", segment[0])):
                segment.pop(0)  # keywords and NAME=value prefixes
            program = VENV_PROGRAM_SH.match(segment[0]) if segment else None
            if program:
                arguments, rest = [], segment[1:]
                while rest:
                    token = rest.pop(0)
                    if token in (">", ">>", ">&", "<", "&>"):
                        rest = rest[1:]  # and its target
                    elif token.isdigit() and rest and rest[0] in (">", ">>", ">&"):
                        continue  # the 2 of 2>&1
                    else:
                        arguments.append(EXPR if "$" in token else token)
                calls.append((program.group(1), tuple(arguments)))
            segment = []
    return calls


# --- the checks: each a function of the script's text ---------------------------------------------------------------


def parse_errors(ps_text: str) -> list[str]:
    return [
        f"{'missing ' + node.type if node.is_missing else 'cannot parse'} at {where(node)}"
        for node in walk(parse(ps_text))
        if node.type == "ERROR" or node.is_missing
    ]


def ps_subcommands(ps_text: str) -> dict[str, str]:
    """{subcommand: its clause's text}, from the script-level switch; without `default`."""
    return {k: src(v) for k, v in top_level_switch_clauses(parse(ps_text)).items() if k.lower() != "default"}


def clause_exit_code(ps_text: str, subcommand: str) -> int | None:
    """The exit code a subcommand's clause ends with: `exit N`, or `$V = N` with a script-level `exit $V`."""
    root = parse(ps_text)
    clause = top_level_switch_clauses(root).get(subcommand)
    if clause is None:
        return None
    exits = [n for n in walk(root) if n.type == "flow_control_statement" and src(n).lower().startswith("exit")]
    for node in exits:
        if any(parent == clause for parent in ancestors(node)):
            return int(src(node).split()[1])
    script_exits = {src(n).split()[1].lower() for n in exits if function_of(n) is None and len(src(n).split()) > 1}
    for target, _, value in assignments(clause):
        if target.lower() in script_exits and src(value).strip().isdigit():
            return int(src(value))
    return None


def usage_line(ps_text: str) -> str | None:
    """The text the `default` clause prints: a literal, or a script-level variable holding one."""
    root = parse(ps_text)
    clause = top_level_switch_clauses(root).get("default")
    if clause is None:
        return None
    for node in walk(clause):
        node = unwrap(node)
        if node.type == "string_literal" and string_value(node).startswith("usage:"):
            return string_value(node)
        if node.type == "variable":
            value = script_level_value(root, src(node))
            if value is not None and unwrap(value).type == "string_literal":
                text = string_value(unwrap(value))
                if text.startswith("usage:"):
                    return text
    return None


def ps_venv_calls(ps_text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(program, arguments) of each Invoke-Checked call of a program in the venv, in order.

    The program is a variable assigned from a path ending in Scripts\\X.exe ($VenvPython = Join-Path $Venv
    "Scripts\\python.exe"); calls of other programs (the base Python that makes the venv) are left out.
    """
    root = parse(ps_text)
    programs = {}
    for target, _, value in assignments(root):
        for node in walk(value):
            if node.type == "string_literal" and (match := VENV_PROGRAM_PS.search(string_value(node))):
                programs[target.lower()] = match.group(1).lower()
    calls = []
    for command in commands(root, "Invoke-Checked"):
        arguments = positional_arguments(command)
        program = programs.get(src(unwrap(arguments[0])).lower()) if arguments else None
        if program:
            calls.append((program, tuple(v for a in arguments[1:] for v in values(a))))
    return calls


def unchecked_native_calls(ps_text: str) -> list[str]:
    """Native programs started anywhere but inside Invoke-Checked, or by an Invoke-Checked that does not throw
    when $LASTEXITCODE is not 0 after the call; and Invoke-Checked failures swallowed by a catch."""
    root = parse(ps_text)
    functions = script_functions(root)
    problems = []
    for command in (n for n in walk(root) if n.type == "command"):
        name = command_name(command).lower()
        operator = any(c.type == "command_invokation_operator" for c in command.children)
        native = operator or name in LAUNCHERS or not (VERB_NOUN.match(name) or name in functions)
        if not native:
            continue
        function = function_of(command)
        if function != CHECKER or name in LAUNCHERS:
            problems.append(f"not through Invoke-Checked: {where(command)}")
            continue
        body = next(p for p in ancestors(command) if p.type == "function_statement")
        checks = [
            n for n in walk(body)
            if n.type == "if_statement" and n.start_byte > command.end_byte
            and re.search(r"\$LASTEXITCODE\s+-ne\s+0", src(n.child_by_field_name("condition")), re.IGNORECASE)
            and any(c.type == "flow_control_statement" and src(c).startswith("throw") for c in walk(n))
        ]
        if not checks:
            problems.append(f"no `if ($LASTEXITCODE -ne 0) {{ throw ... }}` after {where(command)}")
    for node in walk(root):
        if node.type == "invokation_expression" and re.search(r"Process\]::Start\b", src(node), re.IGNORECASE):
            problems.append(f"not through Invoke-Checked: {where(node)}")
    # A catch around Invoke-Checked must throw, or keep the error (or exit code) in a variable that is thrown or
    # exited with later in the function (or the script).
    for catch in (n for n in walk(root) if n.type == "catch_clause"):
        try_statement = catch.parent.parent if catch.parent.type == "catch_clauses" else catch.parent
        if not commands(try_statement.named_children[0], "Invoke-Checked") or function_of(catch) in PROBES:
            continue
        throws = [n for n in walk(catch) if n.type == "flow_control_statement" and src(n).startswith("throw")]
        kept = {target.lower() for target, _, _ in assignments(catch)}
        scope = next((p for p in ancestors(catch) if p.type == "function_statement"), root)
        rethrown = [
            n for n in walk(scope)
            if n.type == "flow_control_statement" and n.start_byte > catch.end_byte
            and len(words := src(n).lower().split()) == 2 and words[0] in ("throw", "exit") and words[1] in kept
        ]
        if not throws and not rethrown:
            problems.append(f"a failed Invoke-Checked is swallowed: {where(catch)}")
    return problems


def state_changes(root: Node) -> list[tuple[str, Node]]:
    """(what, node) for each change of the caller's state: ("env:NAME", ...) or ("location", ...)."""
    changes = []
    for target, node, _ in assignments(root):
        if match := ENV_VARIABLE.match(target):
            changes.append((f"env:{match.group(1).upper()}", node))
    for node in walk(root):
        if node.type == "invokation_expression" and re.match(
            r"\[(System\.)?Environment\]::SetEnvironmentVariable", src(node), re.IGNORECASE
        ):
            argument = next(n for n in walk(node) if n.type == "argument_expression")
            changes.append((f"env:{values(argument)[0].upper()}", node))
        if node.type == "command" and command_name(node).lower() in ENV_ITEM_COMMANDS:
            for argument in positional_arguments(node):
                if match := ENV_PATH.match(src(argument)):
                    changes.append((f"env:{match.group(1).upper()}", node))
        if node.type == "command" and command_name(node).lower() in LOCATION_COMMANDS | {"pop-location", "popd"}:
            changes.append(("location", node))
    return changes


def unrestored_changes(ps_text: str) -> list[str]:
    """Changes of an environment variable or of the location that no enclosing try's finally undoes."""
    root = parse(ps_text)
    problems = []
    for what, node in state_changes(root):
        if in_finally(node):
            continue  # a restore
        restored = False
        for parent in ancestors(node):
            if parent.type != "try_statement" or not any(parent.named_children[0] == p for p in ancestors(node)):
                continue  # only a try block (not its catch) is covered by its finally
            final = next((c for c in parent.named_children if c.type == "finally_clause"), None)
            if final is None:
                continue
            undone = {w for w, n in state_changes(final)}
            if what == "location":
                restored = any(command_name(n).lower() in LOCATION_RESTORES for w, n in state_changes(final))
            else:
                restored = what in undone
            if restored:
                break
        if not restored:
            problems.append(f"{what} not restored in a finally: {where(node)}")
    return problems


def null_array_traps(ps_text: str) -> list[str]:
    """`$x = if (...) { @() } ...`: a statement's empty output is $null, not an empty array, and PowerShell 7.3+
    passes a $null argument on as "" (pytest given "" ignores testpaths and collects the whole repository)."""
    problems = []
    for _, node, value in assignments(parse(ps_text)):
        statement = unwrap(value)
        if statement.type in ("if_statement", "switch_statement") and any(
            n.type == "array_expression" and not n.named_children for n in walk(statement)
        ):
            problems.append(f"$null, not @(), when empty: {where(node)}")
    return problems


def script_parameters(ps_text: str) -> list[str]:
    """A script-level param() block (with [Parameter()] it brings the common parameters: -v becomes -Verbose)."""
    return [where(n) for n in parse(ps_text).named_children if n.type == "param_block"]


# --- the tests: the real scripts ---------------------------------------------------------------------------------


PS_TEXT = PS1.read_text(encoding="utf-8")
SH_TEXT = SH.read_text(encoding="utf-8")
PIP_LIKE = re.compile(r"^-m (pip|ipykernel)\b|\bnbconvert\b")


def pip_like(calls):
    return [call for call in calls if PIP_LIKE.search(" ".join(call[1]))]


def test_parses_without_errors():
    assert parse_errors(PS_TEXT) == []


def test_same_subcommands_as_sh():
    ps = ps_subcommands(PS_TEXT)
    assert set(ps) == sh_subcommands(SH_TEXT)
    for subcommand, tool in LINUX_ONLY.items():
        if tool in ps[subcommand]:
            continue  # ported after all
        # The documented difference: it says it is Linux only and exits 2.
        assert "Linux only" in ps[subcommand], ps[subcommand]
        assert clause_exit_code(PS_TEXT, subcommand) == 2


def test_same_pip_ipykernel_and_nbconvert_arguments():
    sh_calls = pip_like(sh_venv_calls(SH_TEXT))
    assert len(sh_calls) >= 6  # 5 pip installs and the kernel: the reading of setup_venv.sh found them
    assert pip_like(ps_venv_calls(PS_TEXT)) == sh_calls


def test_same_other_calls_of_the_venvs_programs():
    linux_only = tuple(LINUX_ONLY.values())
    sh_calls = {c for c in sh_venv_calls(SH_TEXT) if c not in pip_like([c]) and not set(c[1]) & set(linux_only)}
    ps_calls = {c for c in ps_venv_calls(PS_TEXT) if c not in pip_like([c])}
    assert ("python", ("-m", "tools.run_notebooks", EXPR)) in sh_calls  # the reading of setup_venv.sh found them
    assert ps_calls == sh_calls


def test_every_native_call_is_checked():
    assert unchecked_native_calls(PS_TEXT) == []


def test_every_env_and_location_change_is_restored():
    root = parse(PS_TEXT)
    assert {what for what, _ in state_changes(root)} >= {"env:SMOKE_TEST", "env:SMOL_RUNS_DIR", "location"}
    assert unrestored_changes(PS_TEXT) == []


def test_no_script_parameters():
    assert script_parameters(PS_TEXT) == []


def test_no_empty_array_from_a_statement():
    assert null_array_traps(PS_TEXT) == []


def test_usage_line_and_exit_code_2():
    usage = usage_line(PS_TEXT)
    assert usage is not None
    assert all(subcommand in usage for subcommand in sh_subcommands(SH_TEXT)), usage
    assert clause_exit_code(PS_TEXT, "default") == 2


# --- the checks can fail: broken copies of the script and small snippets ---------------------------------------------


def broken(old: str, new: str) -> str:
    assert old in PS_TEXT, f"the script no longer has {old!r}: update this mutation"
    return PS_TEXT.replace(old, new, 1)


def no_finally_restore():
    return broken("    } finally {\n        $env:SMOKE_TEST = $savedSmokeTest\n", "    } finally {\n")


def with_nbconvert():
    python = '$VenvPython = Join-Path $Venv "Scripts\\python.exe"'
    text = broken(python, python + '\n    $VenvJupyter = Join-Path $Venv "Scripts\\jupyter.exe"')
    call = '\n    Invoke-Checked $VenvJupyter @("nbconvert", "--execute")'
    return text.replace("\n    $failed = $null\n", call + "\n    $failed = $null\n", 1)


MUTATIONS = {
    "syntax error": (lambda: broken('"setup" { Setup }', '"setup" { Setup '), parse_errors),
    "1GB (the grammar reads only 1gb)": (lambda: broken("($Bytes -ge 1gb)", "($Bytes -ge 1GB)"), parse_errors),
    "a subcommand renamed": (
        lambda: broken('"bench" { Setup;', '"benchmark" { Setup;'),
        lambda t: [] if set(ps_subcommands(t)) == sh_subcommands(SH_TEXT) else ["differ"],
    ),
    "colab-sim not documented": (
        lambda: broken("colab-sim is Linux only", "colab-sim is not here"),
        lambda t: [] if "Linux only" in ps_subcommands(t)["colab-sim"] else ["undocumented"],
    ),
    "pip -e without --no-deps": (
        lambda: broken('"install", "-q", "--no-deps", "-e", "."', '"install", "-q", "-e", "."'),
        lambda t: [] if pip_like(ps_venv_calls(t)) == pip_like(sh_venv_calls(SH_TEXT)) else ["differ"],
    ),
    "ipykernel name": (
        lambda: broken('"--name", "smol-trainer"', '"--name", "smol"'),
        lambda t: [] if pip_like(ps_venv_calls(t)) == pip_like(sh_venv_calls(SH_TEXT)) else ["differ"],
    ),
    "an nbconvert call": (
        with_nbconvert,
        lambda t: [] if pip_like(ps_venv_calls(t)) == pip_like(sh_venv_calls(SH_TEXT)) else ["differ"],
    ),
    "tools.references not run": (
        lambda: broken('Invoke-Checked $VenvPython @("-m", "tools.references")', "Write-Host results"),
        lambda t: [] if {c for c in ps_venv_calls(t) if ("python", ("-m", "tools.references")) == c} else ["missing"],
    ),
    "tests unchecked": (lambda: broken('Invoke-Checked $VenvPython (@("-m", "tools.run_tests") + $PytestArgs)',
                                       "& $VenvPython -m tools.run_tests $PytestArgs"), unchecked_native_calls),
    "no exit code check": (lambda: broken("if ($LASTEXITCODE -ne 0) {", "if ($false) {"), unchecked_native_calls),
    "failure swallowed": (lambda: broken("    if ($failed) { throw $failed }\n", ""), unchecked_native_calls),
    "SMOKE_TEST leaks": (no_finally_restore, unrestored_changes),
    "no try around the location": (
        lambda: broken("} finally {\n    Set-Location $SavedLocation\n}", "} finally {\n}"),
        unrestored_changes,
    ),
    "common parameters back": (
        lambda: "param([Parameter(ValueFromRemainingArguments = $true)][string[]]$PytestArgs)\n" + PS_TEXT,
        script_parameters,
    ),
    "arguments from an if": (
        lambda: broken("$Rest = @()\nif ($args.Count -gt 1) { $Rest = $args[1..($args.Count - 1)] }",
                       "$Rest = if ($args.Count -gt 1) { $args[1..($args.Count - 1)] } else { @() }"),
        null_array_traps,
    ),
    "usage exits 0": (lambda: broken("[Console]::Error.WriteLine($Usage)\n            $Code = 2",
                                     "[Console]::Error.WriteLine($Usage)\n            $Code = 0"),
                      lambda t: [] if clause_exit_code(t, "default") == 2 else ["not 2"]),
}


@pytest.mark.parametrize("name", MUTATIONS)
def test_each_check_fails_on_a_broken_copy(name):
    make, check = MUTATIONS[name]
    assert check(PS_TEXT) == [], "the check already fails on the real script"
    assert check(make()) != []


SNIPPETS = {
    "bare python": ('python -m pip install x\n', unchecked_native_calls),
    "call operator outside the checker": ('$py = "python.exe"\n& $py -V\n', unchecked_native_calls),
    "Start-Process": ("Start-Process python -Wait\n", unchecked_native_calls),
    "alias for a cmdlet": ("cd C:\\\n", unchecked_native_calls),
    "checker without a check": ("function Invoke-Checked([string]$Exe) {\n    & $Exe\n}\n", unchecked_native_calls),
    "env set, no finally": ('$env:SMOKE_TEST = "1"\n', unrestored_changes),
    "env restored in catch only": (
        'try {\n    $env:X = "1"\n} catch {\n    $env:X = $null\n}\n', unrestored_changes),
    "another variable restored": (
        'try {\n    $env:X = "1"\n} finally {\n    $env:Y = $null\n}\n', unrestored_changes),
    "SetEnvironmentVariable": ('[Environment]::SetEnvironmentVariable("X", "1")\n', unrestored_changes),
    "Set-Location without finally": ("Set-Location C:\\\n", unrestored_changes),
    "empty array from a switch": ('$a = switch ($x) {\n    "y" { @() }\n    default { @("z") }\n}\n',
                                  null_array_traps),
    "unclosed block": ("function F {\n    Write-Host 1\n", parse_errors),
}


@pytest.mark.parametrize("name", SNIPPETS)
def test_each_check_fails_on_a_snippet(name):
    text, check = SNIPPETS[name]
    assert check(text) != []


def test_checks_pass_good_snippets():
    good = (
        'function Invoke-Checked([string]$Exe, [object[]]$Arguments) {\n'
        '    & $Exe @Arguments\n'
        '    if ($LASTEXITCODE -ne 0) { throw "failed" }\n'
        '}\n'
        '$saved = $env:X\n'
        'try {\n'
        '    $env:X = "1"\n'
        '    Set-Location C:\\\n'
        '    Invoke-Checked python @("-V")\n'
        '} finally {\n'
        '    $env:X = $saved\n'
        '    Set-Location D:\\\n'
        '}\n'
    )
    assert parse_errors(good) == []
    assert unchecked_native_calls(good) == []
    assert unrestored_changes(good) == []
    assert script_parameters(good) == []
