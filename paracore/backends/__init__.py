"""Backends: the places paracore runs work, all behind :class:`~paracore.backends.base.Backend`.

``slurm`` (sbatch through submitit), ``local`` (submitit's local executor) and ``inprocess``
(this process, for tests and debugging). :func:`make_backend` builds one for a session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paracore.backends.base import Backend
from paracore.errors import SpecError

__all__ = ["BUILTIN_BACKENDS", "make_backend"]


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


def make_backend(name: str, session: Any) -> Backend:
    """A new backend called ``name`` for ``session``."""
    factory = BUILTIN_BACKENDS.get(name)
    if factory is None:
        raise SpecError("backend", name, f"one of {', '.join(BUILTIN_BACKENDS)}")
    return factory(session)
