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
        ("RuntimeError", "UnpicklingError", "EOFError"),
        r"(PytorchStreamReader failed|failed finding central directory|Ran out of input|invalid load key)[^\n]*",
        lambda m, e: (
            f"the checkpoint cannot be read ({m.group(0)[:120]}): it may be truncated (an interrupted save or copy) or "
            "another kind of file; copy it again, or use another checkpoint"
        ),
    ),
    Translation(
        ("PermissionError",),
        r"Operation not permitted:? *'?([^'\n]*)'?",
        lambda m, e: (
            f"cannot write '{m.group(1) or getattr(e, 'filename', '')}': operation not permitted; choose a folder you can "
            "write to (--output / --out / trainer.default_root_dir)"
        ),
    ),
    Translation(
        ("OSError",),
        r"No space left on device:? *'?([^'\n]*)'?",
        lambda m, e: (
            f"the disk is full (writing '{m.group(1) or getattr(e, 'filename', '') or 'a file'}'); free some space, or write to "
            "another disk (--output / --out / trainer.default_root_dir)"
        ),
    ),
    Translation(
        ("PermissionError",),
        r"Permission denied:? *'?([^'\n]*)'?",
        lambda m, e: (
            f"cannot write '{m.group(1) or getattr(e, 'filename', '')}': permission denied; choose a folder you can write to "
            "(--output / --out / trainer.default_root_dir), or change its permissions"
        ),
    ),
    Translation(
        ("MisconfigurationException", "ValueError", "RuntimeError"),
        r"You restored a checkpoint with current_epoch=(\d+), but you have set `?Trainer\(max_epochs=(-?\d+)\)",
        lambda m, e: (
            f"the checkpoint has already trained {m.group(1)} epochs, more than this config's trainer.max_epochs "
            f"({m.group(2)}): it comes from another config or run. Resume with the config it was trained with (the "
            "config.yaml in its run folder), or raise --trainer.max_epochs"
        ),
    ),
    Translation(
        ("ValueError", "MisconfigurationException"),
        r"You selected an invalid (strategy|accelerator) name: `\w+=?'?([^'`]*)'?`",
        lambda m, e: (
            f"trainer.{m.group(1)} {m.group(2)!r} is not one Lightning knows; choose "
            + (
                "auto, ddp, ddp_spawn, fsdp or deepspeed (configs/trainer/ has examples)"
                if m.group(1) == "strategy"
                else "auto, cpu or gpu"
            )
        ),
    ),
    Translation(
        ("MisconfigurationException",),
        r"`Timer\(duration='([^']*)'\)` is not a valid duration",
        lambda m, e: (
            f"trainer.max_time {m.group(1)!r} is not a duration; give DD:HH:MM:SS (e.g. 00:12:00:00 for 12 hours) "
            "or a mapping such as {hours: 12}"
        ),
    ),
    Translation(
        ("MisconfigurationException",),
        r"`max_epochs` must be a non-negative integer or -1. You passed in (-?\d+)",
        lambda m, e: (
            f"trainer.max_epochs is {m.group(1)}; give a number of epochs (1 or more), or -1 to train until another "
            "limit (max_steps, max_time) stops it"
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


def exception_chain(err: BaseException) -> list[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    chain, seen = [], set()
    while err is not None and id(err) not in seen:
        chain.append(err)
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return chain


#: the data modules a config can name by class name
DATA_MODULES = (
    "DigitsLT", "CIFAR10LT", "CIFAR100LT", "TinyImageNetLT", "ImageNetLT", "PlacesLT", "INaturalist2018",
    "ImageFolderLT", "MedMNISTLT", "ISICLT", "EuroSATLT", "TabularLT",
)  # fmt: skip


def _parser_message(err: BaseException) -> str:
    """The parser's message without its machinery lines, de-indented; a few shapes of it said plainly
    (:func:`plainly`)."""
    text = str(err)
    lines = [line for line in text.splitlines() if line.strip() and not NOISE.match(line)]
    lines = [line.strip().removeprefix("- ") for line in lines]
    return plainly(text) or "\n".join(dict.fromkeys(lines))


def plainly(text: str) -> str | None:
    """The parser's message for: an unknown data module (with the list), a value of the wrong type
    deep in a config (the key's full path, the type and the value), a command with no config."""
    keys = re.findall(r'Parser key "([\w.]+)"', text)
    wanted = [w for w in re.findall(r"Expected a <class '(\w+)'>", text) if w != "NoneType"]
    given = re.search(r"Expected a dot import path string: (.*)|Got value: (.*)", text)
    value = next((g for g in given.groups() if g), "").strip() if given else None
    if keys == ["data"] and value is not None and not wanted:
        return f"data {value!r} is not a data module; choose one of {', '.join(DATA_MODULES)}, or give a class path (my_package.MyData)"
    if keys and wanted and value is not None:
        where = keys[0] + "".join(f".init_args.{k}" for k in keys[1:]) if keys[0] in ("model", "data") else ".".join(keys)
        return f"{where}: expected {wanted[-1]}, got {value!r}; fix it in the config or on the command line"
    missing = re.search(r"the following arguments are required: (\w+)\.(data|model)", text)
    if missing:
        command = missing.group(1)
        return (
            f"{command} needs a config with the data and the model: lt-imbalance {command} --config configs/digits_lt.yaml "
            "(`lt-imbalance configs` lists the shipped configs)"
        )
    return None


def _translated(chain: list[BaseException]) -> str | None:
    for err in chain:
        for translation in TRANSLATIONS:
            match = translation.applies(err)
            if match is not None:
                return translation.message(match, err)
    return None


def user_message(err: BaseException) -> str | None:
    """The text of a user error (module docstring), or ``None`` for a programming error."""
    chain = exception_chain(err)
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
    except UnicodeDecodeError as err:
        raise UnreadableData(
            f"{what} '{path}' is not a text file (byte {err.start} is {path.read_bytes()[err.start : err.start + 1]!r}: "
            "an image or another binary file?); give the YAML file"
        ) from err
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UnreadableData(f"{what} '{path}' is not valid YAML: {problem}{_yaml_position(err)}; fix the file") from err


def option_values(argv: list[str], *flags: str) -> list[str]:
    """The values given to any of ``flags`` on a command line (``FLAG VALUE`` or ``FLAG=VALUE``), in order."""
    values = []
    for i, word in enumerate(argv):
        for flag in flags:
            if word.startswith(flag + "="):
                values.append(word.split("=", 1)[1])
            elif word == flag and i + 1 < len(argv):
                values.append(argv[i + 1])
    return values


def check_files_first(argv: list[str]) -> None:
    """Read every ``--config FILE`` (``-c FILE``) of a command line and look for every ``--ckpt_path``
    first, before any framework is imported: a missing, empty, malformed or non-mapping config and
    a missing checkpoint are named with the fix at once (the parser itself reads the text and
    cannot say which file)."""
    from lt_imbalance.errors import MissingFile, UnreadableData

    for value in option_values(argv, "--config", "-c"):
        if value.lstrip().startswith(("{", "[")):  # an inline YAML / JSON value
            continue
        if not Path(value).is_file():
            where = "is a folder" if Path(value).is_dir() else "not found"
            raise MissingFile(
                f"config '{value}' {where}; give a YAML file (`lt-imbalance configs` lists the shipped ones, "
                "`lt-imbalance configs copy NAME my.yaml` copies one)"
            )
        contents = read_yaml_file(value, "config")
        if contents is None:
            raise UnreadableData(f"config '{value}' is empty; a config maps trainer:, model: and data: to their settings")
        if not isinstance(contents, dict):
            raise UnreadableData(
                f"config '{value}' holds a {type(contents).__name__}, not a mapping; a config maps trainer:, model: and data: "
                "to their settings (e.g. `lt-imbalance configs copy digits_lt.yaml my.yaml`)"
            )
    for value in option_values(argv, "--ckpt_path"):
        if value not in ("last", "best", "null") and not Path(value).exists():
            raise MissingFile(
                f"checkpoint '{value}' not found; give the path of a checkpoint that training wrote "
                "(<run>/checkpoints/last.ckpt), or its run folder"
            )
        if Path(value).is_file() and truncated_zip(Path(value)):
            raise UnreadableData(
                f"checkpoint '{value}' cannot be read: it is truncated (a zip archive cut short: an interrupted save or copy); "
                "copy it again, or use another checkpoint"
            )


def truncated_zip(path: Path) -> bool:
    """Whether ``path`` starts as a zip archive (as every checkpoint torch saves) but has no end (the
    archive's directory, written last, is missing)."""
    import zipfile

    with open(path, "rb") as file:
        start = file.read(4)
    return start == b"PK\x03\x04" and not zipfile.is_zipfile(path)
