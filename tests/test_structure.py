"""The package's shape: no import circle (imports inside functions included), ``cli`` imports the
commands and never the reverse, and the input normalisation is written in one place."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lt_imbalance"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its file (package imports name the
    ``__init__``; ``from a import b`` names ``a.b`` when that is a module)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_circle_even_through_imports_inside_functions():
    graph = _import_graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    commands = [m for m in graph if m.startswith(("lt_imbalance.commands", "lt_imbalance.tuning", "lt_imbalance.inference"))]
    commands += ["lt_imbalance.sweep", "lt_imbalance.config_files"]
    assert not [m for m in commands if "lt_imbalance.cli" in graph[m]], "a command imports the entry point"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _code_lines(path: Path) -> dict[int, str]:
    """Line number -> the line's code without strings and comments."""
    import io
    import tokenize

    lines: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if token.type not in (tokenize.STRING, tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
            lines[token.start[0]] = lines.get(token.start[0], "") + token.string + " "
    return lines


def test_input_normalisation_is_written_once():
    """``(x / 255 - mean) / std`` lives in ``lt_imbalance/inputs.py:Preprocessor``; the data modules,
    ``predict`` and ``export`` apply that module (docstrings may quote the formula)."""
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, code in _code_lines(path).items()
        if re.search(r"255(\.0)? \) ?-|255(\.0)? - [\w. ]*mean", code)
    ]
    assert len(found) == 1 and found[0].startswith("lt_imbalance/inputs.py:"), found


def test_help_lists_every_command_quickly():
    out = subprocess.run([sys.executable, "-m", "lt_imbalance", "--help"], cwd=ROOT, capture_output=True, text=True, check=True)
    for command in ("fit", "validate", "test", "predict", "export", "tune", "sweep", "configs"):
        assert re.search(rf"^  {command} +\S", out.stdout, re.M), command
    assert (
        "lightning"
        not in subprocess.run(
            [sys.executable, "-c", "import sys, lt_imbalance.cli; print(' '.join(sys.modules))"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
    )  # the entry point itself loads no framework


SHORT_HELP = [
    ["--help"],
    ["configs"],
    ["configs", "--help"],
    ["export", "--help"],
    ["tune", "--help"],
    ["sweep", "--help"],
    ["predict", "--help"],
]


@pytest.mark.parametrize("argv", SHORT_HELP, ids=" ".join)
def test_small_commands_and_their_help_load_no_framework(argv):
    """What makes them start in well under 2 s (scripts/startup_times.py measures it): neither torch
    nor Lightning nor matplotlib is imported; each command shows its own options, shortly."""
    code = (
        "import sys\nfrom lt_imbalance.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('MODULES', ' '.join(sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    loaded = set(out.rsplit("MODULES", 1)[1].split())
    assert not loaded & {"torch", "lightning", "matplotlib", "optuna"}, argv
    assert len(out.splitlines()) < 90, argv


def test_predict_is_one_command_whose_help_names_the_test_command_for_a_config():
    out = subprocess.run(
        [sys.executable, "-m", "lt_imbalance", "predict", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    for option in ("--ckpt_path", "--input", "--output", "--top_k", "--strict", "--overwrite"):
        assert option in out
    assert "lt-imbalance test --config CFG --ckpt_path CKPT" in out and "--config" not in out.split("usage:")[1].split("\n\n")[0]


def test_every_subpackage_is_in_the_wheel():
    """pyproject.toml lists the packages by name: a new sub-package left out installs without it."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "lt_imbalance").rglob("__init__.py")}
    assert found - listed == set(), f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"
