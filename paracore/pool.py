"""``paracore.Pool``: a drop-in for ``multiprocessing.Pool`` whose workers are array tasks.

Every call is a (chunked) map through the same core as :func:`~paracore.api.map_func`, with
the seed API's resource keywords given once to the constructor. Semantics follow
multiprocessing: ``map`` returns results in input order and raises the first failing item's
own exception; when the work fails outside the function (its module cannot be imported on
the node, a chunk ran out of memory for good) the call raises at once with the node's error
and cancels the rest, never hanging. Without Slurm (or with ``backend="local"``) the work
runs in this machine's own processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal

from paracore.api import Keywords, build_spec, listed
from paracore.core.failures import FailureClass
from paracore.core.spec import Call
from paracore.core.transforms import Transform
from paracore.errors import (
    JobFailedError,
    RemoteError,
    RemoteTraceback,
    SpecError,
    WrongTypeError,
)
from paracore.runtime.calls import Applied, Star, WithInitializer
from paracore.shell.announce import announce
from paracore.shell.chunked_map import ItemHandles
from paracore.shell.handle import SubmitHandle
from paracore.shell.maps import submit_items
from paracore.shell.progress import ProgressBar, progress_wanted
from paracore.shell.protocols import Drivers, Handle
from paracore.shell.session import current_session
from paracore.shell.signals import signals_deferred
from paracore.shell.submit import submit
from paracore.shell.waiting import MAX_POLL_S, wait_until

__all__ = ["AsyncResult", "Pool"]


def _placeholder(item: Any) -> Any:
    return item


def own_error(error: JobFailedError) -> BaseException:
    """What multiprocessing would raise for this failure: the function's own exception (with
    a note naming the job and its logs), or the JobFailedError when the node itself failed."""
    cause = error.__cause__
    if isinstance(error, RemoteError) and isinstance(cause, BaseException):
        note = f"raised on the cluster: {str(error).splitlines()[0]}"
        add_note = getattr(cause, "add_note", None)  # Python 3.11+
        if callable(add_note) and note not in getattr(cause, "__notes__", ()):
            add_note(note)
        if cause.__cause__ is None and error.stderr_tail:  # the worker's traceback, as text
            cause.__cause__ = RemoteTraceback(error.stderr_tail)
        return cause
    return error


class _Work:
    """Handles of one pool call, waited on together (under the pool's lock)."""

    def __init__(self, pool: Pool, handles: Sequence[Handle]) -> None:
        self.pool = pool
        self.handles = handles
        self.drivers = Drivers(handles)

    def drive(self) -> None:
        with self.pool._lock:
            self.drivers.drive()

    def bound(self) -> float:
        return self.drivers.bound()

    def due(self) -> float | None:
        return self.drivers.due()

    def final(self) -> bool:
        return all(h.final for h in self.handles)

    def broken(self) -> JobFailedError | None:
        """The first failure outside the function: a chunk, or a task, that failed for good
        without the function raising (its module missing, out of memory, a dead node)."""
        with self.pool._lock:
            return self._broken()

    def _broken(self) -> JobFailedError | None:
        for driver in self.drivers.drivers:
            chunks = getattr(driver, "broken", None)
            if chunks:
                error: JobFailedError = chunks[min(chunks)]
                return error
        for handle in self.handles:
            if not isinstance(handle, SubmitHandle):
                continue  # an item of a chunked map: its chunks were looked at above
            state = handle.lifecycle
            if state.failed and state.last_failure not in (None, FailureClass.USER_ERROR):
                try:
                    handle.outcome()
                except JobFailedError as err:
                    return err
        return None

    def cancel(self) -> int:
        """Cancel what is unfinished; how many of the user's items that was."""
        with self.pool._lock:
            if isinstance(self.handles, ItemHandles):
                counts = self.handles.map.counts()
                self.handles.map.cancel()
                return counts["running"] + counts["pending"]
            left = [handle for handle in self.handles if not handle.final]
            for handle in left:
                handle.cancel()
            return len(left)

    def wait(self, timeout: float | None, *, raise_broken: bool) -> bool:
        """Wait until every handle is final (True), the timeout passes (False), or, with
        ``raise_broken``, the work failed outside the function (raised, the rest cancelled)."""
        session = current_session()
        stop: list[JobFailedError] = []
        enabled = progress_wanted(self.pool._progress, len(self.handles))

        def advance() -> bool:
            self.drive()
            bar.update()
            if raise_broken:
                broken = self.broken()
                if broken is not None:
                    stop.append(broken)
                    return True
            return self.final()

        limit = self.bound() if timeout is None else timeout
        with (
            self.pool._interruptible(),
            ProgressBar(self.handles, enabled=enabled, what="pool") as bar,
        ):
            try:
                wait_until(
                    advance,
                    timeout=limit,
                    clock=session.clock,
                    sleep=session.sleep,
                    poll_s=self.pool._poll_s,
                    max_poll_s=MAX_POLL_S,
                    next_due=self.due,
                    timed_out=lambda: multiprocessing.TimeoutError(
                        f"not finished after {limit:.0f} s"
                    ),
                )
            except multiprocessing.TimeoutError:
                return False
        if stop:
            self.cancel()
            raise own_error(stop[0])
        return True

    def value(self, index: int) -> Any:
        try:
            with self.pool._lock:
                return self.handles[index].outcome()
        except JobFailedError as error:
            own = own_error(error)
            raise own from own.__cause__  # the worker's traceback, not this frame's context

    def values(self) -> list[Any]:
        return [self.value(i) for i in range(len(self.handles))]

    def outcomes(self) -> list[Any]:
        """Each item's value, or its own exception in its place."""
        out: list[Any] = []
        for index in range(len(self.handles)):
            try:
                out.append(self.value(index))
            except Exception as error:
                out.append(error)
        return out


def _read(iterable: Iterable[Any]) -> tuple[list[Any], BaseException | None]:
    """The items of ``iterable`` up to the error it raised, if any (imap reports it at its
    position, as multiprocessing does)."""
    listed([] if not isinstance(iterable, str | bytes) else iterable, "iterable", "items")
    items: list[Any] = []
    try:
        for item in iterable:
            items.append(item)
    except Exception as error:
        return items, error
    return items, None


class _Results(Iterator[Any]):
    """What ``imap`` and ``imap_unordered`` return: an iterator that, like multiprocessing's,
    raises a failed item's exception at its turn and can be iterated on after it."""

    def __init__(
        self, work: _Work, *, ordered: bool, input_error: BaseException | None = None
    ) -> None:
        self._work = work
        self._ordered = ordered
        self._input_error = input_error  # raised after the items read before it
        self._next = 0
        self._left = set(range(len(work.handles)))
        self._ready: list[int] = []
        self._bar: ProgressBar | None = None

    def __iter__(self) -> _Results:
        return self

    def __next__(self) -> Any:
        work = self._work
        if not self._left and not self._ready:
            self._stop()
            error, self._input_error = self._input_error, None
            if error is not None:
                raise error
            raise StopIteration
        if self._bar is None:
            enabled = progress_wanted(work.pool._progress, len(work.handles))
            self._bar = ProgressBar(work.handles, enabled=enabled, what="pool").__enter__()
        with work.pool._interruptible():
            if self._ordered:
                index = self._next
                self._next += 1
                self._left.discard(index)
                if not work.handles[index].final:
                    _Work(work.pool, [work.handles[index]]).wait(None, raise_broken=False)
            else:
                index = self._first_ready()
        self._bar.update()
        return work.value(index)

    def _first_ready(self) -> int:
        """The next finished item in any order, waiting (bounded) until one is."""
        work = self._work
        session = current_session()
        poll = work.pool._poll_s
        waited = 0.0
        limit = work.bound()
        while not self._ready:
            work.drive()
            ready = sorted(i for i in self._left if work.handles[i].final)
            if ready:
                self._left.difference_update(ready)
                self._ready = ready
                break
            broken = work.broken()
            if broken is not None:
                work.cancel()
                raise own_error(broken)
            if waited >= limit:
                raise multiprocessing.TimeoutError(f"no result within {limit:.0f} s")
            session.sleep(poll)
            waited += poll
            poll = min(MAX_POLL_S, poll * 1.5)
        return self._ready.pop(0)

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


class AsyncResult:
    """What ``apply_async`` and ``map_async`` return, as in multiprocessing."""

    def __init__(
        self,
        work: _Work,
        *,
        single: bool,
        callback: Callable[[Any], Any] | None = None,
        error_callback: Callable[[BaseException], Any] | None = None,
    ) -> None:
        self._work = work
        self._single = single
        self._callback = callback
        self._error_callback = error_callback
        self._called = False

    def ready(self) -> bool:
        """True once the call finished (every item has a final outcome)."""
        self._work.drive()
        return self._work.final() or self._work.broken() is not None

    def successful(self) -> bool:
        """Whether the call finished without an exception; ValueError if not ready."""
        if not self.ready():
            raise ValueError(f"{self!r} not ready")
        try:
            self._get_now()
        except Exception:
            return False
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait until ready, or until ``timeout`` seconds passed; once ready, the callbacks
        have run (as in multiprocessing)."""
        with contextlib.suppress(Exception):  # failed outside the function: get() raises it
            self._work.wait(timeout, raise_broken=True)
        self._run_callbacks()

    def get(self, timeout: float | None = None) -> Any:
        """The value (a list for maps); raise the first failure's own exception, or
        ``multiprocessing.TimeoutError`` after ``timeout`` seconds."""
        try:
            finished = self._work.wait(timeout, raise_broken=True)
        finally:
            self._run_callbacks()
        if not finished:
            raise multiprocessing.TimeoutError(f"not ready after {timeout} s")
        return self._get_now()

    def _run_callbacks(self) -> None:
        """The callbacks, once the result is ready (never twice, whoever gets there first)."""
        with self._work.pool._lock:
            self._notify()

    def _get_now(self) -> Any:
        broken = self._work.broken()
        if broken is not None:
            raise own_error(broken)
        values = self._work.values()
        return values[0] if self._single else values

    def _notify(self) -> bool:
        """Run the callback once the result is ready (the pool's watcher thread); True if done."""
        if self._called or not self.ready():
            return self._called
        self._called = True
        try:
            value = self._get_now()
        except Exception as error:
            if self._error_callback is not None:
                self._error_callback(error)
        else:
            if self._callback is not None:
                self._callback(value)
        return True


class Pool:
    """A ``multiprocessing.Pool`` whose workers are cluster array tasks.

    ``processes`` caps how many array tasks run at once (``array_parallelism``); the other
    keywords are those of :func:`~paracore.api.map_func`. ``initializer(*initargs)`` runs once
    in every array task before its first item; ``maxtasksperchild`` is accepted and ignored
    (every array task is a fresh process). ``progress`` shows a progress bar while waiting
    (default: when stderr is a terminal).
    """

    def __init__(
        self,
        processes: int | None = None,
        initializer: Callable[..., Any] | None = None,
        initargs: Iterable[Any] = (),
        maxtasksperchild: int | None = None,
        *,
        job_name: str | None = None,
        partition: str | None = None,
        time_min: int | str | None = None,
        cpus_per_task: int | None = None,
        mem_gb: float | str | None = None,
        gpus: int | None = None,
        env_setup: str | None = None,
        env: Mapping[str, str] | None = None,
        env_merge: Literal["inherit", "replace"] = "inherit",
        jitter_s: float = 0.0,
        array_parallelism: int | str | None = None,
        account: str | None = None,
        qos: str | None = None,
        extra: Mapping[str, Any] | None = None,
        retries: int = 0,
        retry_backoff_s: float = 30.0,
        backend: str | None = None,
        config: Mapping[str, Any] | None = None,
        cluster: str | None = None,
        preset: str | Transform | None = None,
        resume: str | None = None,
        progress: bool | None = None,
    ) -> None:
        if processes is not None and (
            isinstance(processes, bool) or not isinstance(processes, int) or processes < 1
        ):
            raise SpecError("processes", processes, "a whole number >= 1, or None")
        if initializer is not None and not callable(initializer):
            raise WrongTypeError("initializer", initializer, "a callable, or None")
        if maxtasksperchild is not None and (
            isinstance(maxtasksperchild, bool)
            or not isinstance(maxtasksperchild, int)
            or maxtasksperchild < 1
        ):
            raise SpecError("maxtasksperchild", maxtasksperchild, "a positive int, or None")
        keywords = Keywords(
            job_name=job_name,
            partition=partition,
            time_min=time_min,
            cpus_per_task=cpus_per_task,
            mem_gb=mem_gb,
            gpus=gpus,
            env_setup=env_setup,
            env=env,
            env_merge=env_merge,
            jitter_s=jitter_s,
            array_parallelism=processes if array_parallelism is None else array_parallelism,
            account=account,
            qos=qos,
            extra=extra,
            retries=retries,
            retry_backoff_s=retry_backoff_s,
            backend=backend,
            config=config,
            cluster=cluster,
            preset=preset,
            resume="never" if resume is None else resume,  # a pool is not a cache
        )
        self._spec, self._checks = build_spec(Call(_placeholder, (None,)), keywords)
        self._initializer = initializer
        self._initargs = tuple(initargs)
        self._progress = progress
        self._poll_s = 1.0
        self._lock = threading.RLock()
        self._state = "running"
        self._outstanding: list[AsyncResult] = []
        self._works: list[_Work] = []
        self._watcher: threading.Thread | None = None
        self._wake = threading.Event()

    def __repr__(self) -> str:
        return f"<paracore.Pool state={self._state}>"

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        if getattr(self, "_state", None) == "running":  # as multiprocessing does
            _warn(f"unclosed running pool {self!r}", ResourceWarning, source=self)

    # -------------------------------------------------------------- submitting

    def _check_running(self) -> None:
        if self._state != "running":
            raise ValueError("Pool not running")

    def _wrapped(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if self._initializer is None:
            return func
        return WithInitializer(func, self._initializer, self._initargs)

    def _map(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Any],
        chunksize: int | None,
        items: list[Any] | None = None,
    ) -> _Work:
        self._check_running()
        items = listed(iterable, "iterable", "an iterable of items") if items is None else items
        if not items:
            return _Work(self, [])
        # Ctrl-C during the submission lands once the work is the pool's (terminate finds it)
        with self._lock, self._interruptible(), signals_deferred():
            handles = submit_items(
                self._spec,
                items,
                fn=self._wrapped(func),
                chunk_size="auto" if chunksize is None else chunksize,
                options=self._checks,
            )
            return self._started(_Work(self, handles))

    def _apply(
        self, func: Callable[..., Any], args: Iterable[Any], kwds: Mapping[str, Any]
    ) -> _Work:
        self._check_running()
        if self._initializer is None:
            call = Call(func, tuple(args), tuple(dict(kwds).items()))
        else:
            call = Call(self._wrapped(Applied(func)), ((tuple(args), dict(kwds)),))
        with self._lock, self._interruptible(), signals_deferred():
            handle = submit(self._spec.with_payload(call), options=self._checks)
            return self._started(_Work(self, [handle]))

    # -------------------------------------------------------------- multiprocessing's API

    def map(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        *,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """``[func(x) for x in iterable]``, on the cluster; raise the first failure's own error,
        or, with ``return_exceptions=True`` (pypoolparty's way), put each failed item's
        exception in its place and return every item."""
        work = self._map(func, iterable, chunksize)
        work.wait(None, raise_broken=not return_exceptions)
        return work.outcomes() if return_exceptions else work.values()

    def starmap(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        *,
        return_exceptions: bool = False,
    ) -> list[Any]:
        """``[func(*args) for args in iterable]``, on the cluster."""
        return self.map(Star(func), iterable, chunksize, return_exceptions=return_exceptions)

    def imap(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int | None = None
    ) -> Iterator[Any]:
        """Results in input order, each as soon as it (and those before it) are ready; an
        error raised by ``iterable`` comes out at its position, after the results before it."""
        items, error = _read(iterable)
        work = self._map(func, iterable, chunksize, items)
        return _Results(work, ordered=True, input_error=error)

    def imap_unordered(
        self, func: Callable[[Any], Any], iterable: Iterable[Any], chunksize: int | None = None
    ) -> Iterator[Any]:
        """Results as they finish, in any order (an error raised by ``iterable`` comes out
        after the results of the items read before it)."""
        items, error = _read(iterable)
        work = self._map(func, iterable, chunksize, items)
        return _Results(work, ordered=False, input_error=error)

    def apply(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
    ) -> Any:
        """``func(*args, **kwds)`` as one job; its value, or its own exception."""
        return self.apply_async(func, args, kwds).get()

    def apply_async(
        self,
        func: Callable[..., Any],
        args: Iterable[Any] = (),
        kwds: Mapping[str, Any] | None = None,
        callback: Callable[[Any], Any] | None = None,
        error_callback: Callable[[BaseException], Any] | None = None,
    ) -> AsyncResult:
        """Submit ``func(*args, **kwds)`` now; an :class:`AsyncResult` to wait on."""
        work = self._apply(func, args, kwds or {})
        return self._track(AsyncResult(work, single=True, callback=callback,
                                       error_callback=error_callback))  # fmt: skip

    def map_async(
        self,
        func: Callable[[Any], Any],
        iterable: Iterable[Any],
        chunksize: int | None = None,
        callback: Callable[[Any], Any] | None = None,
        error_callback: Callable[[BaseException], Any] | None = None,
    ) -> AsyncResult:
        """Submit the map now; an :class:`AsyncResult` whose ``get()`` is the list."""
        work = self._map(func, iterable, chunksize)
        return self._track(AsyncResult(work, single=False, callback=callback,
                                       error_callback=error_callback))  # fmt: skip

    def starmap_async(
        self,
        func: Callable[..., Any],
        iterable: Iterable[Iterable[Any]],
        chunksize: int | None = None,
        callback: Callable[[Any], Any] | None = None,
        error_callback: Callable[[BaseException], Any] | None = None,
    ) -> AsyncResult:
        """``map_async`` of ``func(*args)``."""
        return self.map_async(Star(func), iterable, chunksize, callback, error_callback)

    def close(self) -> None:
        """Accept no more work; what was submitted carries on (``join`` waits for it)."""
        if self._state == "running":
            self._state = "closed"
        self._wake.set()

    def terminate(self) -> None:
        """Cancel every task the pool started that has not finished (``map``, ``imap``,
        ``apply`` and the async forms alike), saying so in one line on stderr."""
        self._state = "terminated"
        with self._lock:
            works, self._works = self._works, []
            self._outstanding = []
        self._wake.set()
        cancelled = sum(work.cancel() for work in works)
        if cancelled:
            announce(f"Pool terminated: cancelled {cancelled} unfinished item(s) it had submitted")

    def _started(self, work: _Work) -> _Work:
        """Keep ``work`` so that ``terminate`` (and leaving ``with Pool()``) cancels it."""
        with self._lock:
            self._works = [w for w in self._works if not w.final()]
            self._works.append(work)
        return work

    @contextlib.contextmanager
    def _interruptible(self) -> Iterator[None]:
        """Ctrl-C while submitting or waiting terminates the pool (its tasks cancelled, in one
        line), then the KeyboardInterrupt goes on, as multiprocessing's does."""
        try:
            yield
        except KeyboardInterrupt:
            self.terminate()
            raise

    def join(self) -> None:
        """Wait for all outstanding work (after ``close`` or ``terminate``)."""
        if self._state == "running":
            raise ValueError("Pool is still running")
        for result in list(self._outstanding):
            result.wait()
        if self._watcher is not None:
            self._watcher.join()

    def __enter__(self) -> Pool:
        self._check_running()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate()

    # -------------------------------------------------------------- waiting

    def _track(self, result: AsyncResult) -> AsyncResult:
        """Keep the result for ``join``/``terminate``; callbacks run on a watcher thread."""
        with self._lock:
            self._outstanding.append(result)
            wants_thread = result._callback is not None or result._error_callback is not None
            if wants_thread and self._watcher is None:
                self._watcher = threading.Thread(
                    target=self._watch, name="paracore-pool-watcher", daemon=True
                )
                self._watcher.start()
        return result

    def _watch(self) -> None:
        """Run callbacks as results become ready, until none is waiting and the pool is closed
        (or at once when terminated)."""
        poll = self._poll_s
        while self._state != "terminated":
            with self._lock:
                waiting = [
                    r
                    for r in self._outstanding
                    if (r._callback or r._error_callback) and not r._notify()
                ]
            if not waiting and self._state != "running":
                return
            self._wake.wait(poll)
            self._wake.clear()
            poll = min(MAX_POLL_S, poll * 1.5)
