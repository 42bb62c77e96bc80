"""The ``paracore`` command: configuration (``config show``) and runs (``ls``, ``status``,
``logs``, ``cancel``, ``rm``, ``gc``, ``manifest``).

Subcommands are argparse sub-parsers, each with a ``handler`` default, added by the modules
of this package, so more can be added next to ``config``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from paracore.cli.config import add_config_commands
from paracore.cli.runs import add_runs_commands
from paracore.errors import ParacoreError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paracore`` command."""
    parser = argparse.ArgumentParser(
        prog="paracore", description="Boring, safe and fast submission of work to HPC clusters."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_config_commands(commands)
    add_runs_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``paracore`` command; returns the exit status (2 for configuration errors)."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.handler(args, out or sys.stdout)
    except ParacoreError as err:
        print(f"paracore: error: {err}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
