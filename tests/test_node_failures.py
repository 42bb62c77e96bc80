"""How a task that failed in an awkward way is reported, on this machine and with a fake sacct.

- an exception that pickles but cannot be rebuilt (an ``__init__`` with two required
  arguments) keeps its type name, message, traceback, job id and logs; in a chunk, the items
  after it keep their results;
- each record of a chunk's results file is framed on its own: a damaged record, or a value
  that cannot be rebuilt, costs only itself;
- a process that ends inside its payload (``os._exit``, a segfault) is reported at once as
  having exited without a result, naming its logs, not after a wait for the file system;
- a result that cannot be pickled says so, naming its type; the other items keep theirs.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import threading
from pathlib import Path

import cloudpickle
import pytest
import submitit

import paracore as pc
from paracore.backends.slurm.jobs import SubmititJob
from paracore.backends.slurm.polling import Poller
from paracore.core.failures import FailureClass
from paracore.errors import JobFailedError
from paracore.runtime import tasks
from paracore.runtime.chunks import (
    ChunkTask,
    frame,
    items_blob,
    items_path,
    read_results,
    results_path,
    write_items,
)
from paracore.runtime.safe_files import write_private
from paracore.runtime.tasks import (
    CallTask,
    TaskFailure,
    exit_failure,
    failure_path,
    task_failure,
)
from paracore.testing import FakeClock, job_record


class TwoArgs(Exception):
    """Pickles as ``TwoArgs(message)``, so it cannot be rebuilt: ``__init__`` takes two."""

    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"code {code}: {why}")
        self.code = code


class Unbuildable:
    """A value that pickles but cannot be rebuilt where it is read."""

    def __reduce__(self) -> tuple[object, ...]:
        return (TwoArgs, ("one argument",))


def raise_two_args(x: int) -> int:
    if x == 2:
        raise TwoArgs(x, "no good")
    return x * 10


def unbuildable_at_two(x: int) -> object:
    return Unbuildable() if x == 2 else x * 10


def exit_at_two(x: int) -> int:
    if x == 2:
        os._exit(0)  # no exception, no result: the process is just gone
    return x * 10


def crash_at_two(x: int) -> int:
    if x == 2:
        ctypes.string_at(0)  # a segfault
    return x * 10


def lock_at_two(x: int) -> object:
    return threading.Lock() if x == 2 else x * 10


def generator_at_two(x: int) -> object:
    return (i for i in range(x)) if x == 2 else x * 10


def options(tmp_path: Path, **extra: object) -> dict[str, object]:
    return {"backend": "local", "config": {"log_dir": str(tmp_path / "logs")}, **extra}


# ---------------------------------------------------------------- exceptions that do not rebuild


def _check_two_args(error: object, job_id: str) -> None:
    assert isinstance(error, pc.RemoteError), error
    assert error.exc_type == f"{__name__}.TwoArgs"
    assert error.exc_message == "code 2: no good"
    assert error.job_id == job_id and f"job {job_id}" in str(error)
    assert error.stdout_path and error.stdout_path in str(error)
    assert "could not be rebuilt here" in str(error)
    assert "raise TwoArgs(x, " in str(error) and "raise TwoArgs(x, " in (error.stderr_tail or "")
    assert error.failure_class is FailureClass.USER_ERROR


def test_a_task_raising_an_exception_that_cannot_be_rebuilt_keeps_its_text(tmp_path: Path) -> None:
    handles = pc.map_func(raise_two_args, range(4), chunk_size=1, **options(tmp_path))
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert out[:2] == [0, 10] and out[3] == 30
    _check_two_args(out[2], handles[2].job_id)


def test_in_a_chunk_the_items_after_it_keep_their_results(tmp_path: Path) -> None:
    handles = pc.map_func(raise_two_args, range(6), chunk_size=6, **options(tmp_path))
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert out[:2] == [0, 10] and out[3:] == [30, 40, 50]
    _check_two_args(out[2], handles[2].job_id)


def test_an_exception_that_does_not_even_pickle_keeps_its_text() -> None:
    class Local(Exception):  # a local class: cloudpickle pickles it by value
        def __reduce__(self) -> tuple[object, ...]:
            raise TypeError("no pickling me")

    try:
        raise Local("kept")
    except Local as err:
        read = cloudpickle.loads(cloudpickle.dumps(task_failure(err)))
    assert read.exception is None and read.exc_message == "kept"
    assert "could not be pickled on the node" in read.exception_note
    assert "raise Local(" in read.traceback


@pytest.mark.parametrize("chunk_size", [1, 4])
def test_a_value_that_cannot_be_rebuilt_here_fails_its_item_saying_so(
    tmp_path: Path, chunk_size: int
) -> None:
    handles = pc.map_func(unbuildable_at_two, range(4), chunk_size=chunk_size, **options(tmp_path))
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert out[:2] == [0, 10] and out[3] == 30
    error = out[2]
    assert isinstance(error, pc.RemoteError)
    assert "its result could not be rebuilt here" in str(error) or (
        "its result (item 2) could not be rebuilt here" in str(error)
    )
    assert "TwoArgs.__init__()" in str(error)
    assert f"job {handles[2].job_id}" in str(error)


# ---------------------------------------------------------------- results records, framed


def test_a_damaged_record_or_an_unbuildable_value_costs_only_itself(tmp_path: Path) -> None:
    path = results_path(tmp_path, 0)
    damaged = bytearray(frame(2, "ok", "will be damaged")[1])
    damaged[-3] ^= 0xFF  # its checksum no longer matches
    failure = task_failure(TwoArgs(3, "bad"))
    records = [
        frame(1, "ok", 10)[1],
        bytes(damaged),
        frame(3, "err", failure)[1],
        frame(4, "ok", Unbuildable())[1],
        frame(5, "ok", 50)[1],
    ]
    write_private(path, b"".join(records))
    results = read_results(path)
    assert results[1] == ("ok", 10) and results[5] == ("ok", 50)
    assert 2 not in results
    status, read = results[3]
    assert status == "err" and read.exc_message == "code 3: bad" and read.exception is None
    status, read = results[4]
    assert status == "err" and isinstance(read, TaskFailure)
    assert "its result (item 4) could not be rebuilt here" in read.exc_message


def _run_chunk(folder: Path, fn: object, positions: list[int]) -> dict[str, int]:
    write_private(folder / "fn.pkl", cloudpickle.dumps(fn))
    write_items(items_path(folder, 0), items_blob(positions, positions))
    return ChunkTask(str(folder), 0, "call")()


def test_a_chunk_killed_while_writing_keeps_its_next_attempts_records(tmp_path: Path) -> None:
    """The first attempt was killed half-way through a record; the second appends after it."""
    folder = tmp_path / "map"
    first = frame(10, "ok", 100)[1] + frame(11, "ok", 110)[1]
    write_private(results_path(folder, 0), first + frame(12, "ok", 120)[1][:9])  # cut short
    assert _run_chunk(folder, lambda x: x * 10, [10, 11, 12, 13]) == {"ok": 2, "err": 0}
    assert read_results(results_path(folder, 0)) == {p: ("ok", p * 10) for p in (10, 11, 12, 13)}


# ---------------------------------------------------------------- a result being written


def _job(tmp_path: Path, state: str, clock: FakeClock, **fields: object) -> SubmititJob:
    records = {"77": job_record("77", state, **fields)}
    poller = Poller(lambda ids: {j: records[j] for j in ids if j in records}, clock=clock.now)
    job = submitit.SlurmJob(folder=tmp_path, job_id="77")
    return SubmititJob(job, None, "call f()", poller, clock.now, "key")


def test_a_result_file_still_being_written_is_waited_for(tmp_path: Path) -> None:
    clock = FakeClock()
    job = _job(tmp_path, "RUNNING", clock)
    whole = cloudpickle.dumps(("success", 42))
    write_private(tmp_path / "77_0_result.pkl", whole[: len(whole) // 2])
    assert not job.done()
    write_private(tmp_path / "77_0_result.pkl", whole)
    assert job.done() and job.outcome() == 42


# ---------------------------------------------------------------- a process that just ends


@pytest.mark.parametrize("fn", [exit_at_two, crash_at_two], ids=["os._exit", "segfault"])
def test_a_task_whose_process_ends_says_so_and_names_its_logs(tmp_path: Path, fn: object) -> None:
    handles = pc.map_func(fn, range(4), chunk_size=1, **options(tmp_path))
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert out[:2] == [0, 10] and out[3] == 30
    error = out[2]
    assert isinstance(error, JobFailedError) and not isinstance(error, pc.RemoteError)
    assert "its process exited without writing a result" in str(error)
    assert f"logs: {handles[2].stdout_path} {handles[2].stderr_path}" in str(error)


def test_a_chunk_whose_process_ends_keeps_the_items_it_finished(tmp_path: Path) -> None:
    handles = pc.map_func(exit_at_two, range(5), chunk_size=5, **options(tmp_path))
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert out[:2] == [0, 10]
    for error in out[2:]:
        assert isinstance(error, JobFailedError)
        assert "its process exited without writing a result" in str(error)


def _leave_exit_record(folder: Path) -> None:
    """What job 77 leaves when its process ends inside the payload."""
    record = cloudpickle.dumps(exit_failure())
    write_private(failure_path(folder / "77_0_result.pkl", "key"), record)


def test_completed_without_a_result_but_with_its_exit_record_is_reported_at_once(
    tmp_path: Path,
) -> None:
    """sacct says COMPLETED, no result file: the task's exit record says none is coming, so
    there is no wait for a late file system (that wait is for a result that was written)."""
    clock = FakeClock()
    job = _job(tmp_path, "COMPLETED", clock)
    _leave_exit_record(tmp_path)
    assert job.done()  # no clock advance
    with pytest.raises(JobFailedError, match="its process exited without writing a result") as info:
        job.outcome()
    assert info.value.failure_class is FailureClass.USER_ERROR
    assert f"logs: {job.stdout_path} {job.stderr_path}" in str(info.value)


def test_a_killed_process_is_still_classed_by_the_scheduler(tmp_path: Path) -> None:
    """The exit record of an OOM-killed task does not make it a user error."""
    clock = FakeClock()
    job = _job(tmp_path, "OUT_OF_MEMORY", clock, exit_code=0, exit_signal=125)
    _leave_exit_record(tmp_path)
    assert job.done()
    with pytest.raises(JobFailedError, match="more memory") as info:
        job.outcome()
    assert info.value.failure_class is FailureClass.OUT_OF_MEMORY


# ---------------------------------------------------------------- results that do not pickle


@pytest.mark.parametrize(
    ("fn", "kind"),
    [(lock_at_two, "_thread.lock"), (generator_at_two, "builtins.generator")],
    ids=["lock", "generator"],
)
@pytest.mark.parametrize("chunk_size", [1, 4])
def test_a_result_that_cannot_be_pickled_names_its_type(
    tmp_path: Path, fn: object, kind: str, chunk_size: int
) -> None:
    handles = pc.map_func(fn, range(4), chunk_size=chunk_size, **options(tmp_path))
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert out[:2] == [0, 10] and out[3] == 30
    error = out[2]
    assert isinstance(error, pc.RemoteError)
    assert f"the result, a {kind}, could not be pickled" in str(error)
    assert "ended without" not in str(error) and "exited without" not in str(error)
    assert f"logs: {handles[2].stdout_path}" in str(error)


def call_inner(task: CallTask) -> int:
    value = task()
    assert type(value) is int  # a call inside the job's call gets the value itself
    return value


def test_a_job_value_is_pickled_once_and_a_call_inside_it_gets_its_own_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUBMITIT_FOLDER", str(tmp_path))  # as in a submitit job
    monkeypatch.setattr(tasks, "_record_path", lambda key: None)  # no job files here
    sent = CallTask.pack(call_inner, (CallTask.pack(abs, (-4,)),))()
    assert type(sent) is not int  # pickled already: what submitit pickles is that pickle
    assert pickle.loads(cloudpickle.dumps(sent)) == 4


def test_the_pool_raises_it_as_a_type_error_and_keeps_the_other_results(tmp_path: Path) -> None:
    with pc.Pool(backend="local", config={"log_dir": str(tmp_path / "logs")}) as pool:
        with pytest.raises(TypeError, match=r"the result, a _thread\.lock, could not be pickled"):
            pool.map(lock_at_two, range(4))
        results = pool.imap(lock_at_two, range(4))
        assert [next(results), next(results)] == [0, 10]
        with pytest.raises(TypeError, match="could not be pickled"):
            next(results)
        assert next(results) == 30
