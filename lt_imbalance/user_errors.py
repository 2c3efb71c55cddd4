"""Telling a user's mistake from a programming error, and saying the mistake in a few lines.

A **user error** is something the person running the command can fix:

- a :class:`~lt_imbalance.errors.UserError`, raised on purpose by this package with the problem
  and the fix in its message (:mod:`lt_imbalance.errors`);
- a value the parser rejects (wrong type, unknown key, bad class path);
- one of a short list of third-party errors about the user's input, translated here
  (:data:`TRANSLATIONS`): an optimiser refusing its arguments, a missing or mismatched
  checkpoint, ``accelerator: gpu`` on a machine without one, a YAML file that does not parse.

The command prints it as one short block, without the traceback and the parser's union noise
(``Expected a <class 'NoneType'>``, the whole namespace). Everything else is a programming error
and keeps its traceback, as does any error when ``LT_IMBALANCE_TRACEBACK=1`` is set.
"""

from __future__ import annotations

import re
from argparse import ArgumentError
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lt_imbalance.errors import UserError

TRACEBACK_VARIABLE = "LT_IMBALANCE_TRACEBACK"
#: lines of jsonargparse's messages that describe its own machinery, not the user's mistake
NOISE = re.compile(
    r"^\s*(- )?(Expected a <class 'NoneType'>|Given value( type)?:|Subtypes:|Does not validate against any of the Union subtypes|Errors:)"
)
MAX_LINES = 12


@dataclass(frozen=True)
class Translation:
    """A third-party error about the user's input: its type names, the pattern its message matches,
    and the message to print instead (from the regex match and the error)."""

    types: tuple[str, ...]
    pattern: str
    message: Callable[[re.Match, BaseException], str]

    def applies(self, err: BaseException) -> re.Match | None:
        names = {cls.__name__ for cls in type(err).__mro__}
        return re.search(self.pattern, str(err), re.S) if names & set(self.types) else None


def _yaml_position(err: BaseException) -> str:
    mark = getattr(err, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


TRANSLATIONS = (
    Translation(
        ("ValueError",),
        r"^(Invalid (learning rate|[\w ]+ value|beta parameter[^:]*)):? *(.*)",
        lambda m, e: (
            f"the optimiser refused its settings: {str(e).splitlines()[0]}. Fix model.init_args.optimizer.init_args "
            "(e.g. --model.init_args.optimizer.init_args.lr 0.05; learning rate, momentum and weight decay must be >= 0)"
        ),
    ),
    Translation(
        ("FileNotFoundError",),
        r"(Checkpoint file not found|No such file or directory)[: ]*'?([^'\n]*\.ckpt)",
        lambda m, e: (
            f"checkpoint '{m.group(2)}' not found; give the path of a checkpoint that training wrote "
            "(<run>/checkpoints/last.ckpt), or a run folder"
        ),
    ),
    Translation(
        ("RuntimeError",),
        r"Error\(s\) in loading state_dict for (\w+):\s*(.*?)(\n|$)",
        lambda m, e: (
            f"the checkpoint does not fit this model ({m.group(2).strip()[:200]}); use the config it was trained "
            "with (the config.yaml in its run folder) or a checkpoint of this model"
        ),
    ),
    Translation(
        ("MisconfigurationException",),
        r"No supported gpu backend found|(GPU|CUDA|MPS)\w* ?Accelerator can ?not run on your system since the accelerator is not available",
        lambda m, e: (
            "trainer.accelerator asks for a GPU, but this machine has none that PyTorch can use; use "
            "--trainer.accelerator cpu, or auto (a GPU when there is one)"
        ),
    ),
    Translation(
        ("YAMLError",),
        r"(.*)",
        lambda m, e: (
            f"a YAML file does not parse: {getattr(e, 'problem', None) or str(e).splitlines()[0]}{_yaml_position(e)}; "
            "fix the file (indentation, a missing ':' or an unclosed quote or bracket)"
        ),
    ),
)


def _chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        chain.append(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return chain


def _parser_message(err: BaseException) -> str:
    """The parser's message without its machinery lines, de-indented."""
    lines = [line for line in str(err).splitlines() if line.strip() and not NOISE.match(line)]
    lines = [line.strip().removeprefix("- ") for line in lines]
    return "\n".join(dict.fromkeys(lines))


def _translated(chain: list[BaseException]) -> str | None:
    for err in chain:
        for translation in TRANSLATIONS:
            match = translation.applies(err)
            if match is not None:
                return translation.message(match, err)
    return None


def user_message(err: BaseException) -> str | None:
    """The text of a user error (module docstring), or ``None`` for a programming error."""
    chain = _chain(err)
    ours = next((e for e in chain if isinstance(e, UserError)), None)
    if ours is not None:
        return str(ours)
    translated = _translated(chain)
    if translated is not None:
        return translated
    parser_error = next((e for e in chain if isinstance(e, ArgumentError)), None)
    return _parser_message(parser_error) if parser_error is not None else None


def describe_user_error(err: BaseException) -> str | None:
    """A short message for a user error (module docstring), or ``None`` for a programming error."""
    text = user_message(err)
    if text is None:
        return None
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES] + [f"... ({len(lines) - MAX_LINES} more lines)"]
    body = "\n".join(lines)
    return f"lt-imbalance: error: {body}\n(the full traceback: set {TRACEBACK_VARIABLE}=1)"


def read_yaml_file(path: str | Path, what: str = "YAML file"):
    """The contents of a YAML file; a missing file or a parse error is a user error naming the file."""
    import yaml

    from lt_imbalance.errors import MissingFile, UnreadableData

    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"{what} '{path}' not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UnreadableData(f"{what} '{path}' is not valid YAML: {problem}{_yaml_position(err)}; fix the file") from err


def check_config_files(argv: list[str]) -> None:
    """Read every ``--config FILE`` (``-c FILE``, ``--config=FILE``) of a command line as YAML first,
    so that a malformed file is named (the parser itself reads the text and cannot say which file)."""
    for i, arg in enumerate(argv):
        value = (
            arg.split("=", 1)[1]
            if arg.startswith("--config=")
            else argv[i + 1]
            if arg in ("--config", "-c") and i + 1 < len(argv)
            else None
        )
        if value is not None and Path(value).is_file():
            read_yaml_file(value, "config")
