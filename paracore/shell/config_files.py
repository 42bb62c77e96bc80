"""Reading configuration files and the environment: the I/O edge of :mod:`paracore.core.config`.

Files, lowest to highest precedence: ``~/.paracore.yaml`` (the user file), ``paracore.yaml``
in the working directory or the nearest parent that has one (the project file), and the file
named by ``$PARACORE_CONFIG``. The environment is the current session's. Everything after
reading is the pure code in :mod:`paracore.core.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, overload

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
from paracore.core.options import SubmitOptions, check_resume
from paracore.core.sentinel import NOT_GIVEN, NotGiven
from paracore.core.spec import JobSpec
from paracore.core.transforms import Transform
from paracore.errors import ConfigError
from paracore.shell.private import trusted_file, writable_by_others
from paracore.shell.session import current_session

__all__ = [
    "PROJECT_FILE",
    "PROJECT_MARKERS",
    "USER_FILE",
    "config_paths",
    "find_project_file",
    "load_layer",
    "load_layers",
    "project_root",
    "resolve",
    "settle_options",
    "store_folder",
    "with_preset",
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


def store_folder(resolved: ResolvedConfig, cwd: Path | None = None) -> Path:
    """Where the run store lives: the ``store`` setting, relative to the project's root."""
    environ = current_session().environ
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
    environ: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> list[tuple[str, Path]]:
    """The configuration files that apply, lowest precedence first, as (layer name, path).

    ``$PARACORE_CONFIG`` must name an existing file; the other two are optional.
    """
    environ = current_session().environ if environ is None else environ
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
    environ: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> list[Layer]:
    """Every configuration file that applies, read and parsed, lowest precedence first."""
    return [load_layer(path, name) for name, path in config_paths(environ, cwd, home)]


def resolve(
    cluster: str | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    **overrides: Any,
) -> ResolvedConfig:
    """The effective configuration: built-in defaults, config files, environment, call.

    ``cluster`` chooses the profile (else ``$PARACORE_CLUSTER``, else ``active_cluster``);
    ``overrides`` are flat per-call values (``partition="short"``, ``time_min=30``, ...).
    ``result.as_dict()`` gives the flat values, ``result.origin(key)`` where one came from.
    """
    environ = current_session().environ if environ is None else environ
    layers = load_layers(environ, cwd, home)
    return resolve_layers(
        layers, cluster=cluster, environ=environ, config=config, overrides=overrides
    )


@overload
def with_preset(
    name: str, spec: NotGiven = ..., *, presets: ResolvedConfig | None = None
) -> Transform: ...
@overload
def with_preset(name: str, spec: JobSpec, *, presets: ResolvedConfig | None = None) -> JobSpec: ...
def with_preset(
    name: str,
    spec: JobSpec | NotGiven = NOT_GIVEN,
    *,
    presets: ResolvedConfig | None = None,
) -> JobSpec | Transform:
    """The team preset ``name`` from the ``presets:`` section of the configuration files.

    ``with_preset("gpu-large")`` returns a transform (the files are read now, once; applying
    it is pure); ``with_preset("gpu-large", spec)`` applies it at once. Pass ``presets=`` (a
    :class:`ResolvedConfig`) to use an already resolved configuration instead of the files.
    """
    resolved = presets if presets is not None else resolve()
    transform: Transform = resolved.preset(name)
    return transform if spec is NOT_GIVEN else transform(spec)


def settle_options(
    *,
    resume: str | None = None,
    validate: bool | None = None,
    origins: Mapping[str, str] | None = None,
    config: ResolvedConfig | None = None,
) -> SubmitOptions:
    """One submission's choices: the keywords given, else the configuration (``config``, or
    the files read once here): ``resume``, ``validate`` and the run store's folder."""
    config = resolve() if config is None else config
    if resume is None:
        origin = config.origin("resume")
        resume = check_resume(config.value("resume", "auto"), str(origin) if origin else "resume")
    return SubmitOptions(
        resume=resume,
        validate=config.validate if validate is None else validate,
        origins=origins,
        store=str(store_folder(config)),
    )
