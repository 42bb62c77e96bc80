"""The ``paracore`` command: ``paracore config show [--explain] [--cluster NAME]``.

Subcommands are argparse sub-parsers, each with a ``handler`` default, so more can be added
next to ``config``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from paracore.config import ResolvedConfig
from paracore.config_files import resolve
from paracore.exceptions import ParacoreError


def _show(value: Any) -> str:
    return (
        "null (cleared)" if value is None else repr(value) if isinstance(value, str) else str(value)
    )


def config_table(resolved: ResolvedConfig, *, explain: bool) -> Table:
    """The effective values (and with ``explain``, the layer and file:line of each)."""
    title = f"cluster profile: {resolved.cluster}" if resolved.cluster else "no cluster profile"
    table = Table(title=title, title_justify="left")
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    if explain:
        table.add_column("layer", no_wrap=True)
        table.add_column("where", overflow="fold")
    for key in sorted(resolved.settings):
        setting = resolved.settings[key]
        row = [key, _show(setting.value)]
        if explain:
            origin = setting.origin
            row += [origin.layer, origin.location]
        table.add_row(*row)
    return table


def presets_table(resolved: ResolvedConfig, *, explain: bool) -> Table:
    """Team presets defined in the files: their settings, and with ``explain`` their lines."""
    table = Table(title="presets", title_justify="left")
    table.add_column("preset", no_wrap=True)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    if explain:
        table.add_column("where", overflow="fold")
    for name in sorted(resolved.presets):
        for key, value in resolved.presets[name].items():
            row = [name, key, _show(value)]
            if explain:
                origin = resolved.preset_origins.get(("presets", name, key))
                if origin is None:  # a section such as env: look at one of its leaves
                    origin = next(
                        (
                            o
                            for p, o in resolved.preset_origins.items()
                            if p[:3] == ("presets", name, key)
                        ),
                        None,
                    )
                row.append(str(origin) if origin else "")
            table.add_row(*row)
    return table


def _config_show(args: argparse.Namespace, out: TextIO) -> int:
    resolved = resolve(args.cluster)
    console = Console(file=out, width=None if out.isatty() else 200, soft_wrap=False)
    files = ", ".join(resolved.files) or "none (built-in defaults only)"
    console.print(f"configuration files (lowest precedence first): {files}", highlight=False)
    if resolved.profiles:
        console.print(f"profiles: {', '.join(resolved.profiles)}", highlight=False)
    console.print(config_table(resolved, explain=args.explain))
    if resolved.presets:
        console.print(presets_table(resolved, explain=args.explain))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``paracore`` command."""
    parser = argparse.ArgumentParser(prog="paracore", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="inspect the layered configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print the effective configuration")
    show.add_argument(
        "--explain", action="store_true", help="say which layer, file and line set each value"
    )
    show.add_argument(
        "--cluster", help="the cluster profile (default: $PARACORE_CLUSTER or active_cluster)"
    )
    show.set_defaults(handler=_config_show)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the ``paracore`` command; returns the exit status (2 for configuration errors)."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args, out or sys.stdout)
    except ParacoreError as err:
        print(f"paracore: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
