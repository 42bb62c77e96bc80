"""``paracore config show``: the effective configuration, and where each value came from."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from paracore.core.config import ResolvedConfig
from paracore.shell.config_files import resolve

__all__ = ["add_config_commands", "config_table", "presets_table"]


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


MASK = "***"


def _masked(key: str, value: Any, show_values: bool) -> Any:
    """Environment variable values hidden (names kept) unless asked for."""
    if key == "env" and isinstance(value, dict) and not show_values:
        return {name: MASK for name in value}
    return value


def presets_table(resolved: ResolvedConfig, *, explain: bool, show_values: bool = False) -> Table:
    """Team presets defined in the files: their settings, and with ``explain`` their lines."""
    table = Table(title="presets", title_justify="left")
    table.add_column("preset", no_wrap=True)
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    if explain:
        table.add_column("where", overflow="fold")
    for name in sorted(resolved.presets):
        for key, value in resolved.presets[name].items():
            row = [name, key, _show(_masked(key, value, show_values))]
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


def config_show(args: argparse.Namespace, out: TextIO) -> int:
    resolved = resolve(args.cluster)
    console = Console(file=out, width=None if out.isatty() else 200, soft_wrap=False)
    files = ", ".join(resolved.files) or "none (built-in defaults only)"
    console.print(f"configuration files (lowest precedence first): {files}", highlight=False)
    if resolved.profiles:
        console.print(f"profiles: {', '.join(resolved.profiles)}", highlight=False)
    console.print(config_table(resolved, explain=args.explain))
    if resolved.presets:
        console.print(presets_table(resolved, explain=args.explain, show_values=args.show_values))
    return 0


def add_config_commands(commands: Any) -> None:
    """Add ``config show`` to the ``paracore`` command's sub-parsers."""
    config = commands.add_parser("config", help="inspect the layered configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print the effective configuration")
    show.add_argument(
        "--explain", action="store_true", help="say which layer, file and line set each value"
    )
    show.add_argument(
        "--cluster", help="the cluster profile (default: $PARACORE_CLUSTER or active_cluster)"
    )
    show.add_argument(
        "--show-values",
        action="store_true",
        help="print environment variable values (hidden by default: they may hold secrets)",
    )
    show.set_defaults(handler=config_show)
