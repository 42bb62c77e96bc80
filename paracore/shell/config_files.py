"""Reading configuration files and the environment: the I/O edge of :mod:`paracore.core.config`.

Files, lowest to highest precedence: ``~/.paracore.yaml`` (the user file), ``paracore.yaml``
in the working directory or the nearest parent that has one (the project file), and the file
named by ``$PARACORE_CONFIG``. The environment is the current session's unless one is given;
finding and reading the files is :mod:`paracore.shell.config_layers`, and everything after
reading is the pure code in :mod:`paracore.core.config`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, overload

from paracore.core.config import Layer, ResolvedConfig
from paracore.core.options import SubmitOptions, check_resume
from paracore.core.sentinel import NOT_GIVEN, NotGiven
from paracore.core.spec import JobSpec
from paracore.core.transforms import Transform
from paracore.shell import config_layers
from paracore.shell.config_layers import (
    PROJECT_FILE,
    PROJECT_MARKERS,
    USER_FILE,
    find_project_file,
    load_layer,
    project_root,
)
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


def store_folder(resolved: ResolvedConfig, cwd: Path | None = None) -> Path:
    """Where the run store lives: the ``store`` setting, relative to the project's root."""
    return config_layers.store_folder(resolved, current_session().environ, cwd)


def config_paths(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> list[tuple[str, Path]]:
    """The configuration files that apply, lowest precedence first, as (layer name, path).

    ``$PARACORE_CONFIG`` must name an existing file; the other two are optional.
    """
    environ = current_session().environ if environ is None else environ
    return config_layers.config_paths(environ, cwd, home)


def load_layers(
    environ: Mapping[str, str] | None = None, cwd: Path | None = None, home: Path | None = None
) -> list[Layer]:
    """Every configuration file that applies, read and parsed, lowest precedence first."""
    environ = current_session().environ if environ is None else environ
    return config_layers.load_layers(environ, cwd, home)


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
    return config_layers.resolve_in(
        environ, cluster, config=config, cwd=cwd, home=home, overrides=overrides
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
