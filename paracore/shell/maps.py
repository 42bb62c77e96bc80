"""Submitting a map of items: one array task per item, or chunks of items per array task.

:func:`submit_items` picks the chunk size (:func:`paracore.core.chunking.chunk_size_for`, from
the number of items, the cluster's ``MaxArraySize`` and parallelism, and a pilot's durations)
and submits either a plain map (one task per item, as :func:`~paracore.shell.submit.submit_map`)
or a chunked one (:mod:`paracore.shell.chunked_map`): the function pickled once, the items
written in bulk into one file per chunk, every item checked before anything is submitted.
"""

from __future__ import annotations

import sys
import uuid
import warnings
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from paracore.backends.base import Backend
from paracore.core.chunking import chunk_size_for, pack
from paracore.core.digest import content_key
from paracore.core.options import SubmitOptions
from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.rules import effective_parallelism
from paracore.core.spec import Call, Command, JobSpec
from paracore.errors import SchedulerUnreachable, SpecError, StoreError
from paracore.runtime.chunks import FUNCTION_FILE, ChunkTask, items_blob, items_path, write_items
from paracore.shell.call_content import value_content
from paracore.shell.checks import check_command, check_pickles, describe_payload, task_options
from paracore.shell.chunked_map import ChunkedMap, ItemHandles, map_folder, map_succeeded
from paracore.shell.handle import SubmitHandle
from paracore.shell.private import owner_only, private_folder
from paracore.shell.runs import load_run_files
from paracore.shell.session import current_session
from paracore.shell.store import RunRow
from paracore.shell.submit import (
    AfterOk,
    RunRequest,
    array_limit,
    begin_run,
    key_fields,
    map_prepared,
    parents_of,
    prepared,
    source_fingerprint,
)

__all__ = ["chunk_size_of", "item_seconds_of", "submit_items"]

ChunkSize = int | str


def item_seconds_of(pilot: Any) -> float | None:
    """Seconds one item takes per a pilot (its p95 duration), from what
    :func:`~paracore.shell.pilot.autotune_from_pilot` returns; None without a pilot."""
    if pilot is None:
        return None
    recommendation = getattr(pilot, "recommendation", pilot)
    duration = getattr(recommendation, "duration", None)
    if duration is None or not hasattr(duration, "p95"):
        raise SpecError(
            "pilot", pilot, "what autotune_from_pilot returned (with measured durations)"
        )
    return float(duration.p95)


def _parallelism(spec: ResolvedSpec, backend: Backend) -> int:
    """Array tasks that may run at once: the partition's cores over the task's cpus, capped
    by an explicit throttle (``"auto"`` is not used here: idle cores change by the minute,
    and the chunking must not, or identical work would not be recognised again)."""
    res = spec.resources
    try:
        limits = backend.limits(res.partition)
    except (SpecError, SchedulerUnreachable):
        limits = None
    cpus = res.cpus_per_task or 1
    total = limits.total_cpus if limits is not None and limits.total_cpus else cpus
    slots = max(1, total // max(1, cpus))
    for cap in (res.array_parallelism, res.max_array_parallelism):
        if isinstance(cap, int) and cap > 0:
            slots = min(slots, cap)
    return slots


def chunk_size_of(
    chunk_size: ChunkSize,
    spec: ResolvedSpec,
    backend: Backend,
    items: int,
    *,
    max_array_size: int,
    pilot: Any = None,
) -> int:
    """The chunk size to use: ``chunk_size`` if a whole number, else picked (``"auto"``)."""
    if isinstance(chunk_size, bool) or not (
        (isinstance(chunk_size, int) and chunk_size >= 1) or chunk_size == "auto"
    ):
        raise SpecError("chunk_size", chunk_size, "a whole number >= 1, or 'auto'")
    if isinstance(chunk_size, int):
        return chunk_size
    time_min = spec.resources.time_min
    return chunk_size_for(
        items,
        parallelism=_parallelism(spec, backend),
        max_array_size=max_array_size,
        item_seconds=item_seconds_of(pilot),
        time_limit_s=time_min * 60.0 if time_min is not None else None,
    )


def submit_items(
    spec: JobSpec,
    items: Sequence[Any],
    *,
    fn: Callable[[Any], Any] | None = None,
    chunk_size: ChunkSize = "auto",
    pilot: Any = None,
    options: SubmitOptions | None = None,
    after_ok: AfterOk | None = None,
) -> Sequence[SubmitHandle] | ItemHandles:
    """Run ``fn(item)`` for every item (or every item as a shell command when ``fn`` is None).

    ``spec`` carries the resources; its payload is replaced per item. With one item per chunk
    the handles are :class:`~paracore.shell.handle.SubmitHandle`\\ s of one array (the seed
    API's behaviour); otherwise :class:`~paracore.shell.chunked_map.ItemHandles`, one per item.
    """
    if not items:
        return []
    first = Command(items[0]) if fn is None else Call(fn, (items[0],))
    options = options or SubmitOptions()
    raw = resolve_spec(spec.with_payload(first))
    checked, backend = prepared(raw, options)
    limit = array_limit(backend)
    size = chunk_size_of(chunk_size, raw, backend, len(items), max_array_size=limit, pilot=pilot)
    if size == 1 or not backend.keeps_files:
        if fn is None:
            payloads: list[Command | Call] = [Command(c) for c in items]
        else:
            payloads = [Call(fn, (item,)) for item in items]
        return map_prepared(
            checked, backend, payloads, after_ok=after_ok, options=options, max_array_size=limit
        )
    warning = effective_parallelism(checked)[1]
    if warning:
        warnings.warn(warning, stacklevel=3)
    return _chunked(checked, backend, items, fn, size, raw, limit, after_ok, options)


def _check_commands(items: Sequence[Any], spec: ResolvedSpec) -> None:
    """Every command a string whose programs are found (each distinct program looked up once)."""
    which = current_session().which
    found: dict[str, str | None] = {}

    def cached(program: str) -> str | None:
        if program not in found:
            found[program] = which(program)
        return found[program]

    for index, cmd in enumerate(items):
        if not isinstance(cmd, str):
            raise SpecError(f"cmds[{index}]", cmd, "a shell command (a string)")
        check_command(cmd, spec, cached, f"cmds[{index}]")


def _blobs(chunks: Sequence[Sequence[int]], items: Sequence[Any]) -> list[bytes]:
    """Each chunk's items file; an item cloudpickle cannot send is named before any is sent."""
    blobs = []
    for positions in chunks:
        if isinstance(positions, range):
            part = items[positions.start : positions.stop]
        else:
            part = [items[p] for p in positions]
        try:
            blobs.append(items_blob(positions, part))
        except Exception:
            for position, item in zip(positions, part, strict=True):
                check_pickles(f"items[{position}]", item)
            raise
    return blobs


def _chunked(
    spec: ResolvedSpec,
    backend: Backend,
    items: Sequence[Any],
    fn: Callable[[Any], Any] | None,
    size: int,
    raw: ResolvedSpec,
    limit: int,
    after_ok: AfterOk | None,
    options: SubmitOptions,
) -> ItemHandles:
    """Submit the items in chunks: the first wave now, retry waves as items fail."""
    kind = "command" if fn is None else "call"
    if fn is None:
        _check_commands(items, spec)
        fn_blob = b""
        call_label = ""
    else:
        try:
            fn_blob = cloudpickle.dumps(fn)
        except Exception:
            check_pickles("fn", fn)
            raise
        call_label = Call(fn, ()).label
    chunks = pack(range(len(items)), size)
    first_blobs = _blobs(chunks, items)
    parents, after = parents_of(after_ok, backend)
    if after:
        options = options.for_dependent()
    contents = [value_content((list(c), [items[p] for p in c])) for c in chunks]  # sets sorted
    key = content_key(
        f"chunked-{kind}",
        key_fields(spec, backend),
        [fn_blob, source_fingerprint(fn), *contents],
    )
    store = current_session().store(None if options.store is None else Path(options.store))
    run_id = store.new_run_id()
    common = task_options(spec)
    common.pop("record_key")
    sys_path = tuple(sys.path) if fn is not None else ()

    def label(position: int) -> str:
        if fn is None:
            return describe_payload(spec.with_payload(Command(items[position])))
        return f"call {call_label}(items[{position}])"

    def request(wave: int, first: int, parts: list[Sequence[int]], folder: Path) -> RunRequest:
        tasks = [
            ChunkTask(
                str(folder),
                first + offset,
                kind,
                sys_path=sys_path,
                record_key=uuid.uuid4().hex[:16],
                **common,
            )
            for offset in range(len(parts))
        ]
        describes = [_describe(kind, call_label, part, first + i) for i, part in enumerate(parts)]
        content = [key.encode(), f"wave {wave}".encode()]
        if wave > 1:  # a retry wave belongs to its map's run (its folder)
            content += [folder.name.encode(), *(array("q", part).tobytes() for part in parts)]
        return RunRequest("map", spec, backend, tasks, describes, limit, content)

    def write(folder: Path, first: int, blobs: Sequence[bytes], with_fn: bool) -> None:
        private_folder(folder)
        with owner_only():
            if with_fn and fn is not None:
                write_items(folder / FUNCTION_FILE, fn_blob)
            for offset, blob in enumerate(blobs):
                write_items(items_path(folder, first + offset), blob)

    # The first wave is the map's run: a new run gets a folder of its own (named by its run id),
    # so it never reads the results of an earlier run; a re-attached run keeps reading its own.
    own = map_folder(spec.log_folder, key, run_id)
    started = begin_run(
        request(1, 0, chunks, own),
        parents=parents,
        after=after,
        options=options,
        run_id=run_id,
        prepare=lambda: write(own, 0, first_blobs, with_fn=True),
        accept=_every_item_succeeded,
    )
    folder = own if started.attached is None else _folder_of(started.attached)

    def launch(wave: int, first: int, parts: list[Sequence[int]]) -> list[SubmitHandle]:
        if wave == 1:
            return started.handles
        blobs = _blobs(parts, items)
        begun = begin_run(
            request(wave, first, parts, folder),
            parents=[],
            after=(),
            options=options,
            prepare=lambda: write(folder, first, blobs, with_fn=False),
            announced=False,
        )
        return begun.handles

    def size_for(count: int) -> int:  # a retry wave: spread out, never larger chunks
        parallelism = _parallelism(raw, backend)
        return min(size, chunk_size_for(count, parallelism=parallelism, max_array_size=limit))

    chunked = ChunkedMap(
        len(items),
        folder=folder,
        size=size,
        launch=launch,
        size_for=size_for,
        label=label,
        retry=spec.retry,
        job_name=spec.name,
    )
    return ItemHandles(chunked)


def _folder_of(run: RunRow) -> Path:
    """The folder a recorded chunked map's chunks read and write (its first task's)."""
    _spec, tasks = load_run_files(Path(run.files))
    task = tasks[0]
    if not isinstance(task, ChunkTask):
        raise StoreError(f"run {run.id} is not a chunked map (its tasks are {type(task).__name__})")
    return Path(task.folder)


def _every_item_succeeded(run: RunRow) -> bool:
    """Whether every item of a recorded chunked map succeeded (``cache`` re-uses no failure)."""
    try:
        return map_succeeded(_folder_of(run))
    except StoreError:  # its files are gone: nothing to re-use
        return False


def _describe(kind: str, call_label: str, positions: Sequence[int], chunk: int) -> str:
    """How a chunk is named in the run store and in its errors."""
    what = f"call {call_label}()" if kind == "call" else "commands"
    if isinstance(positions, range) and positions.step == 1:
        span = f"items {positions.start}..{positions.stop - 1}"
    else:
        span = f"{len(positions)} items"
    return f"chunk {chunk}: {what} over {span}"
