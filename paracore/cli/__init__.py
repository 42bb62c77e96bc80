"""The ``paracore`` command: spec files (``run``, ``preview``, ``validate``), runs (``ls``,
``status``, ``logs``, ``cancel``, ``rm``, ``gc``, ``manifest``), configuration (``config
show``) and ``backends``.

Subcommands are argparse sub-parsers, each with a ``handler`` default, added by the modules
of this package. Exit status: 0 ok, 1 a job failed, 2 bad input, 3 the scheduler did not
answer, 130 interrupted (Ctrl-C while ``run --wait`` waited: the work goes on). With the
optional ``argcomplete`` package (``pip install 'paracore[completion]'``),
``eval "$(register-python-argcomplete paracore)"`` completes commands and options in bash.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from paracore.cli.backend_commands import add_backend_commands
from paracore.cli.config_commands import add_config_commands
from paracore.cli.file_commands import add_file_commands
from paracore.cli.runs_commands import add_runs_commands
from paracore.errors import JobFailedError, JobTimeoutError, ParacoreError, SchedulerUnreachable

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "build_parser",
    "main",
]

EXIT_OK = 0
EXIT_FAILED = 1
"""A job (or a step, or an item) failed, or a wait ran out."""
EXIT_BAD_INPUT = 2
"""A spec file, an option, a configuration value or a run id is not acceptable."""
EXIT_UNREACHABLE = 3
"""The scheduler did not answer (controller or database down, or timed out)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C while waiting: the submitted work goes on running (``paracore cancel`` stops it)."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paracore`` command."""
    from paracore import __version__

    parser = argparse.ArgumentParser(
        prog="paracore",
        description="Boring, safe and fast submission of work to HPC clusters. Exit status: "
        "0 ok, 1 a job failed, 2 bad input, 3 the scheduler did not answer.",
    )
    parser.add_argument("--version", action="version", version=f"paracore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_file_commands(commands)
    add_runs_commands(commands)
    add_config_commands(commands)
    add_backend_commands(commands)
    return parser


def exit_status(err: ParacoreError) -> int:
    """The exit status an error stands for (see the module's docstring)."""
    if isinstance(err, SchedulerUnreachable):
        return EXIT_UNREACHABLE
    if isinstance(err, JobFailedError | JobTimeoutError):
        return EXIT_FAILED
    return EXIT_BAD_INPUT


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``paracore`` command; returns the exit status."""
    parser = build_parser()
    try:
        import argcomplete  # optional: shell completion

        argcomplete.autocomplete(parser)
    except ImportError:
        pass
    args = parser.parse_args(argv)
    try:
        status: int = args.handler(args, out or sys.stdout)
    except ParacoreError as err:
        print(f"paracore: error: {err}", file=sys.stderr)
        return exit_status(err)
    except KeyboardInterrupt as interrupt:
        if not interrupt.args:  # not announced where it was caught
            print("paracore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return status


if __name__ == "__main__":
    sys.exit(main())
