"""Backends: the places paracore runs work, all behind :class:`~paracore.backends.base.Backend`.

``slurm`` (sbatch through submitit), ``local`` (submitit's local executor) and ``inprocess``
(this process, for tests and debugging) come with paracore; a site ships its own in a
separate package that names it in the ``paracore.backends`` entry-point group::

    [project.entry-points."paracore.backends"]
    mysite = "mysite_paracore:MySiteBackend"

The entry point is a class (or factory) called with the session. :func:`make_backend` builds
one by name; :func:`installed_backends` lists what is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from typing import Any

import attrs

from paracore.backends.base import Backend
from paracore.core.config import did_you_mean
from paracore.errors import SpecError

__all__ = ["BUILTIN_BACKENDS", "ENTRY_POINT_GROUP", "InstalledBackend", "installed_backends",
           "make_backend"]  # fmt: skip

ENTRY_POINT_GROUP = "paracore.backends"


def _slurm(session: Any) -> Backend:
    from paracore.backends.slurm import SlurmBackend

    return SlurmBackend(session)


def _local(session: Any) -> Backend:
    from paracore.backends.local import LocalBackend

    return LocalBackend(session)


def _inprocess(session: Any) -> Backend:
    from paracore.backends.inprocess import InProcessBackend

    return InProcessBackend(session)


BUILTIN_BACKENDS: dict[str, Callable[[Any], Backend]] = {
    "slurm": _slurm,
    "local": _local,
    "inprocess": _inprocess,
}
"""Backend name -> a factory taking the session (imported only when first used)."""


@attrs.frozen
class InstalledBackend:
    """A backend that can be chosen by name: where it comes from (``value``, as an entry
    point writes it) and the distribution that installed it."""

    name: str
    value: str
    distribution: str
    load: Callable[[], Any] = attrs.field(eq=False, repr=False)


_BUILTIN_VALUES = {
    "slurm": "paracore.backends.slurm:SlurmBackend",
    "local": "paracore.backends.local:LocalBackend",
    "inprocess": "paracore.backends.inprocess:InProcessBackend",
}


def _returning(factory: Callable[[Any], Backend]) -> Callable[[], Callable[[Any], Backend]]:
    return lambda: factory


def installed_backends() -> dict[str, InstalledBackend]:
    """Every backend by name: paracore's own, then those other packages declare in the
    ``paracore.backends`` entry-point group (a plugin may not take a built-in name)."""
    found = {
        name: InstalledBackend(name, _BUILTIN_VALUES[name], "paracore", _returning(factory))
        for name, factory in BUILTIN_BACKENDS.items()
    }
    for point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            continue
        dist = point.dist.name if point.dist is not None else "?"
        found[point.name] = InstalledBackend(point.name, point.value, dist, point.load)
    return found


def make_backend(name: str, session: Any) -> Backend:
    """A new backend called ``name`` for ``session``: a built-in one, else a plugin's."""
    factory = BUILTIN_BACKENDS.get(name)
    if factory is not None:
        return factory(session)
    installed = installed_backends()
    plugin = installed.get(name)
    if plugin is None:
        guess = did_you_mean(name, list(installed))
        hint = f"did you mean {guess!r}? " if guess else ""
        raise SpecError(
            "backend",
            name,
            f"{hint}installed backends: {', '.join(installed)} (`paracore backends` lists "
            "them; a plugin declares itself in the 'paracore.backends' entry-point group)",
        )
    try:
        made = plugin.load()(session)
    except Exception as err:
        raise SpecError(
            "backend",
            name,
            f"the plugin {plugin.value} (from {plugin.distribution}) failed to load: "
            f"{type(err).__name__}: {err}",
        ) from err
    missing = [
        a for a in ("name", "submit", "check", "accounting", "cancel") if not hasattr(made, a)
    ]
    if missing:
        raise SpecError(
            "backend",
            name,
            f"the plugin {plugin.value} is not a paracore Backend (it lacks {', '.join(missing)}; "
            "see docs/backends.md)",
        )
    backend: Backend = made
    return backend
