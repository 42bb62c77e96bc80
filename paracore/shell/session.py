"""The session: every collaborator the shell uses, in one explicit value.

Clock, sleep, random numbers, the environment, ``$PATH`` lookups and the backends (with their
status poller and cluster cache) live in a :class:`Session`. Nothing else in paracore keeps
state between calls, so a test swaps the whole world with :func:`use_session`::

    with use_session(Session(clock=fake.now, sleep=fake.sleep, environ={})):
        ...

The default session is made on first use; this module is the one place that holds it.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from paracore.core.resolved import ResolvedSpec
from paracore.core.spec import BACKENDS, backend_name_ok
from paracore.errors import SpecError

if TYPE_CHECKING:
    from paracore.backends.base import Backend
    from paracore.shell.store import RunStore

__all__ = ["Session", "current_session", "use_session"]

Which = Callable[[str], str | None]


@attrs.define(kw_only=True, eq=False)
class Session:
    """Where paracore gets time, randomness, the environment and its backends from.

    ``environ`` is read each time it is needed (the default is the live ``os.environ``);
    ``runner`` runs scheduler queries (``sacct``, ``scontrol``, ``sinfo``, ...) and returns
    their output; ``cluster_ttl_s`` is how long an answer about partitions and nodes is kept;
    ``queue_allowance_s`` is how long each attempt may wait in the queue before a wait
    without a timeout gives up (see :func:`~paracore.core.lifecycle.wait_bound`);
    ``status_silence_s`` is how long sacct may fail (or not know a job) before squeue and the
    job's own files decide.
    ``backends`` holds the backends made so far, by name; give one to replace a built-in.
    """

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = attrs.field(factory=random.Random)
    environ: Mapping[str, str] = os.environ
    which: Which = shutil.which
    runner: Callable[..., str] | None = None
    cluster_ttl_s: float = 300.0
    queue_allowance_s: float = 24 * 3600.0
    status_silence_s: float = 120.0
    backends: dict[str, Any] = attrs.field(factory=dict)
    _stores: dict[Path, Any] = attrs.field(factory=dict, init=False, repr=False)

    def backend(self, name: str) -> Backend:
        """The backend called ``name`` (``slurm``, ``local``, ``inprocess``), made once."""
        if name not in self.backends:
            from paracore.backends import make_backend

            self.backends[name] = make_backend(name, self)
        backend: Backend = self.backends[name]
        return backend

    def store(self, folder: Path | None = None) -> RunStore:
        """The run store in ``folder`` (default: the configured one), opened once per folder."""
        if folder is None:
            from paracore.shell.config_layers import resolve_in, store_folder

            # The project's root is searched up to the current session's $HOME, as
            # paracore.shell.config_files.store_folder does.
            folder = store_folder(resolve_in(self.environ), current_session().environ)
        folder = Path(folder)
        if folder not in self._stores:
            from paracore.shell.store import RunStore

            self._stores[folder] = RunStore(folder)
        store: RunStore = self._stores[folder]
        return store

    def detect_backend(self) -> str:
        """``slurm`` when ``sbatch`` and ``srun`` are on PATH, else ``local``."""
        return "slurm" if self.which("sbatch") and self.which("srun") else "local"

    def backend_name(self, requested: str) -> str:
        """The backend a spec's ``requested`` name means: ``auto`` is ``$PARACORE_BACKEND``,
        else detected."""
        if requested != "auto":
            return requested
        forced = self.environ.get("PARACORE_BACKEND", "auto")
        if not backend_name_ok(forced):
            raise SpecError(
                "PARACORE_BACKEND",
                forced,
                f"one of {', '.join(BACKENDS)}, or an installed plugin's name",
                "environment",
            )
        return self.detect_backend() if forced == "auto" else forced

    def backend_for(self, spec: ResolvedSpec) -> Backend:
        """The backend that will run ``spec``."""
        return self.backend(self.backend_name(spec.backend))


_DEFAULT: list[Session] = []
_CURRENT: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "paracore_session", default=None
)


def current_session() -> Session:
    """The session in use: the innermost :func:`use_session`, else the default one."""
    session = _CURRENT.get()
    if session is not None:
        return session
    if not _DEFAULT:
        _DEFAULT.append(Session())
    return _DEFAULT[0]


@contextlib.contextmanager
def use_session(session: Session) -> Iterator[Session]:
    """Make ``session`` the current one inside the ``with`` block (and its calls)."""
    token = _CURRENT.set(session)
    try:
        yield session
    finally:
        _CURRENT.reset(token)
