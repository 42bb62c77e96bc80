"""``paracore backends``: the backends that can be chosen by name, built-in and plugins."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from paracore.backends import installed_backends, make_backend
from paracore.shell.session import current_session

__all__ = ["add_backend_commands"]


def add_backend_commands(commands: Any) -> None:
    """Add ``backends`` to the ``paracore`` command."""
    parser = commands.add_parser(
        "backends",
        help="list the backends that are installed (built-in and plugins)",
        description="List the backends a spec or $PARACORE_BACKEND can name: paracore's own "
        "and those other packages declare in the 'paracore.backends' entry-point group.",
    )
    parser.add_argument("--json", action="store_true", help="print plain data for scripts")
    parser.set_defaults(handler=_backends)


def _describe(name: str) -> dict[str, Any]:
    """What a backend says of itself once made (or why it cannot be made)."""
    try:
        backend = make_backend(name, current_session())
    except Exception as err:  # a broken plugin is listed, with its error
        return {"error": str(err)}
    doc = (type(backend).__doc__ or "").strip().splitlines()
    return {
        "description": doc[0] if doc else "",
        "schedules_dependencies": bool(getattr(backend, "schedules_dependencies", False)),
        "keeps_files": bool(getattr(backend, "keeps_files", False)),
    }


def _backends(args: argparse.Namespace, out: TextIO) -> int:
    rows = []
    for name, found in installed_backends().items():
        rows.append({"name": name, "from": found.distribution, "entry_point": found.value,
                     **_describe(name)})  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2), file=out)
        return 0
    table = Table(title="paracore backends")
    for head in ("name", "from", "entry point", "what it is"):
        table.add_column(head)
    for row in rows:
        what = row.get("description") or f"[red]cannot be loaded: {row.get('error')}[/red]"
        table.add_row(row["name"], row["from"], row["entry_point"], what)
    Console(file=out, width=None if out.isatty() else 160).print(table)
    return 0
