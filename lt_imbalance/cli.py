"""The ``lt-imbalance`` command: the one entry point of every subcommand.

It finds the subcommand in :data:`lt_imbalance.commands.COMMANDS`, imports only that command's
module and runs its ``main(argv)``; ``lt-imbalance --help`` lists them all. Every command goes
through the same error handling: a user error (:mod:`lt_imbalance.user_errors`) is printed as a
short message with the fix and exit status 2; anything else keeps its traceback. Library
functions raise; only this entry point exits.
"""

from __future__ import annotations

import os
import signal
import sys
from importlib import import_module

from lt_imbalance.commands import BY_NAME, COMMANDS, LIGHTNING
from lt_imbalance.console import quiet_libraries, take_verbose_flag
from lt_imbalance.user_errors import TRACEBACK_VARIABLE, check_files_first, describe_user_error


def usage() -> str:
    width = max(len(c.name) for c in COMMANDS)
    lines = ["usage: lt-imbalance <command> [options]   (lt-imbalance <command> --help for its options)", "", "commands:"]
    lines += [f"  {c.name:<{width}}  {c.summary}" for c in COMMANDS]
    lines += ["", "every command: --verbose shows the libraries' own messages and warnings (hidden by default)"]
    return "\n".join(lines)


def command_main(argv: list[str], from_command_line: bool):
    """The function that runs ``argv`` (``argv[0]`` is the command name), and the arguments it takes."""
    command = BY_NAME[argv[0]]
    if command.module == LIGHTNING:  # LightningCLI reads sys.argv itself when run from the command line
        return import_module(LIGHTNING).build_cli, None if from_command_line else argv
    return import_module(command.module).main, argv[1:]


def main(args: list[str] | None = None) -> None:
    """Entry point of ``lt-imbalance`` and ``python -m lt_imbalance`` (module docstring)."""
    argv = take_verbose_flag(sys.argv[1:] if args is None else list(args))
    if args is None:
        sys.argv[1:] = argv  # LightningCLI reads sys.argv itself
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    if argv[0] not in BY_NAME:
        print(f"lt-imbalance: error: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        sys.exit(2)
    quiet_libraries()
    try:
        check_files_first(argv[1:])
        run, rest = command_main(argv, from_command_line=args is None)
        status = run(rest)
    except SystemExit as stop:
        if type(stop).__name__ != "SIGTERMException":
            raise
        # Lightning's stop on SIGTERM (its callbacks have run): a SystemExit without a code, exit 0 otherwise
        print(f"lt-imbalance {argv[0]}: stopped by SIGTERM", file=sys.stderr)
        sys.exit(128 + signal.SIGTERM)
    except BrokenPipeError:  # the reader went away (`lt-imbalance configs | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as err:
        message = describe_user_error(err)
        if message is None or os.environ.get(TRACEBACK_VARIABLE):
            raise
        print(message, file=sys.stderr)
        sys.exit(2)
    if isinstance(status, int) and status:  # a command that ran but failed (e.g. runs of a sweep): 1
        sys.exit(status)


def sweep_alias() -> None:
    """``lt-imbalance-sweep ARGS``: the same as ``lt-imbalance sweep ARGS``."""
    main(["sweep", *sys.argv[1:]])
