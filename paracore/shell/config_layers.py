"""The configuration files that apply in a given environment, read and resolved.

Files, lowest to highest precedence: ``~/.paracore.yaml`` (the user file), ``paracore.yaml``
in the working directory or the nearest parent that has one (the project file), and the file
named by ``$PARACORE_CONFIG``. Every function here is given the environment it reads; the
defaults to the current session's are in :mod:`paracore.shell.config_files`, so the session
(which finds its run store through this module) and the configuration files do not import
each other. Everything after reading is the pure code in :mod:`paracore.core.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from paracore.core.config import (
    ENV_FILE_LAYER,
    PROJECT_LAYER,
    STORE_DEFAULT,
    USER_LAYER,
    Layer,
    ResolvedConfig,
    layer_from_yaml,
    resolve_layers,
)
from paracore.errors import ConfigError
from paracore.shell.private import trusted_file, writable_by_others

__all__ = [
    "PROJECT_FILE",
    "PROJECT_MARKERS",
    "USER_FILE",
    "config_paths",
    "find_project_file",
    "load_layer",
    "load_layers",
    "project_root",
    "resolve_in",
    "store_folder",
]

USER_FILE = ".paracore.yaml"
PROJECT_FILE = "paracore.yaml"


PROJECT_MARKERS = (".git", ".hg", ".svn", "pyproject.toml")
"""What makes a folder a project's root: the search for ``paracore.yaml`` stops there."""


def project_root(start: Path, home: Path | None = None) -> Path:
    """The project ``start`` is in: the nearest folder with a project marker or a
    ``paracore.yaml`` (searched as :func:`find_project_file` does), else ``start``."""
    start = start.resolve()
    home = home.resolve() if home is not None else None
    for directory in (start, *start.parents):
        try:
            if writable_by_others(directory.stat().st_mode):
                break
        except OSError:
            break
        markers = (*PROJECT_MARKERS, PROJECT_FILE)
        if any((directory / m).exists() for m in markers):
            return directory
        if directory == home:
            break
    return start


def store_folder(
    resolved: ResolvedConfig, environ: Mapping[str, str], cwd: Path | None = None
) -> Path:
    """Where the run store lives: the ``store`` setting, relative to the project's root
    (searched from ``cwd``, stopping at ``environ``'s ``$HOME``)."""
    home = Path(environ.get("HOME") or Path.home())
    folder = Path(str(resolved.value("store", STORE_DEFAULT))).expanduser()
    if folder.is_absolute():
        return folder
    return project_root(Path.cwd() if cwd is None else cwd, home) / folder


def find_project_file(start: Path, home: Path | None = None) -> Path | None:
    """``paracore.yaml`` in ``start`` or the nearest parent that has one, within the project.

    The search stops at the project's root (a folder with ``.git``, ``.hg``, ``.svn`` or
    ``pyproject.toml``), at ``home`` when ``start`` is inside it, and before any folder others
    may write into (``/tmp``): a file planted above the project is never read.
    """
    start = start.resolve()
    home = home.resolve() if home is not None else None
    for directory in (start, *start.parents):
        try:
            if writable_by_others(directory.stat().st_mode):
                return None
        except OSError:
            return None
        candidate = directory / PROJECT_FILE
        if candidate.is_file():
            return candidate
        if directory == home or any((directory / m).exists() for m in PROJECT_MARKERS):
            return None
    return None


def config_paths(
    environ: Mapping[str, str], cwd: Path | None = None, home: Path | None = None
) -> list[tuple[str, Path]]:
    """The configuration files that apply, lowest precedence first, as (layer name, path).

    ``$PARACORE_CONFIG`` must name an existing file; the other two are optional.
    """
    home = Path(environ.get("HOME") or Path.home()) if home is None else Path(home)
    cwd = Path.cwd() if cwd is None else Path(cwd)
    paths: list[tuple[str, Path]] = []
    user = home / USER_FILE
    if user.is_file():
        paths.append((USER_LAYER, user))
    project = find_project_file(cwd, home)
    if project is not None and project.resolve() != user.resolve():
        paths.append((PROJECT_LAYER, project))
    named = environ.get("PARACORE_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(
                "PARACORE_CONFIG", named, "the path of an existing YAML file", "environment"
            )
        paths.append((ENV_FILE_LAYER, path))
    return paths


def load_layer(path: Path, name: str) -> Layer:
    """Read and parse one YAML file into a Layer (key lines kept for provenance).

    The file must be yours (or root's) and writable by nobody else (:func:`trusted_file`).
    """
    trusted_file(path, name)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError("file", str(path), f"a readable file ({err.strerror})", name) from None
    return layer_from_yaml(text, name, str(path))


def load_layers(
    environ: Mapping[str, str], cwd: Path | None = None, home: Path | None = None
) -> list[Layer]:
    """Every configuration file that applies, read and parsed, lowest precedence first."""
    return [load_layer(path, name) for name, path in config_paths(environ, cwd, home)]


def resolve_in(
    environ: Mapping[str, str],
    cluster: str | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ResolvedConfig:
    """The effective configuration in ``environ``: built-in defaults, config files, the
    environment, then ``config`` and the flat ``overrides``
    (:func:`paracore.shell.config_files.resolve` with the environment given)."""
    layers = load_layers(environ, cwd, home)
    return resolve_layers(
        layers, cluster=cluster, environ=environ, config=config, overrides=overrides or {}
    )
