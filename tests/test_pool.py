"""paracore.Pool on this machine: multiprocessing's API and semantics, over chunked maps."""

from __future__ import annotations

import importlib
import multiprocessing
import operator
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import paracore as pc


def square(x: int) -> int:
    if x == 7:
        raise ZeroDivisionError(f"no square for {x}")
    return x * x


def set_flag(path: str) -> None:
    Path(path).write_text("initialised")


def read_flag(x: int) -> str:
    import os

    return f"{x}:{Path(os.environ['FLAG_FILE']).read_text()}"


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[pc.Pool]:
    with pc.Pool(backend="local", config={"log_dir": str(tmp_path / "logs")}) as made:
        yield made


def test_map_and_starmap_return_results_in_input_order(pool: pc.Pool) -> None:
    assert pool.map(abs, range(-12, 0)) == list(range(12, 0, -1))
    assert pool.starmap(operator.sub, [(5, 1), (9, 3), (1, 1)]) == [4, 6, 0]
    assert pool.map(abs, []) == []


def test_map_raises_the_failing_items_own_exception(pool: pc.Pool) -> None:
    with pytest.raises(ZeroDivisionError, match="no square for 7") as caught:
        pool.map(square, range(20), chunksize=5)
    notes = getattr(caught.value, "__notes__", [])
    assert any("items[7]" in note and "logs:" in note for note in notes) or sys.version_info < (
        3,
        11,
    )


def test_imap_keeps_order_and_imap_unordered_gives_every_result(pool: pc.Pool) -> None:
    assert list(pool.imap(abs, range(-9, 0), chunksize=3)) == list(range(9, 0, -1))
    assert sorted(pool.imap_unordered(abs, range(-9, 0), chunksize=3)) == list(range(1, 10))
    results = pool.imap(square, range(10), chunksize=5)
    assert [next(results) for _ in range(7)] == [x * x for x in range(7)]
    with pytest.raises(ZeroDivisionError):
        next(results)  # raised at its own position, as multiprocessing does
    assert next(results) == 64


def test_apply_and_the_async_forms(pool: pc.Pool) -> None:
    assert pool.apply(divmod, (17, 5)) == (3, 2)
    assert pool.apply(int, ("ff",), {"base": 16}) == 255
    result = pool.map_async(abs, [-1, -2, -3])
    assert result.get(timeout=120) == [1, 2, 3]
    assert result.ready() and result.successful()
    failing = pool.apply_async(square, (7,))
    failing.wait(timeout=120)
    assert failing.ready() and not failing.successful()
    with pytest.raises(ZeroDivisionError):
        failing.get(timeout=1)


def test_callbacks_run_when_results_are_ready(tmp_path: Path) -> None:
    got: list[object] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def on_error(error: BaseException) -> None:
        errors.append(error)
        done.set()

    pool = pc.Pool(backend="local", config={"log_dir": str(tmp_path)})
    pool.map_async(abs, [-4, -5], callback=got.append)
    pool.apply_async(square, (7,), error_callback=on_error)
    pool.close()
    pool.join()
    assert done.wait(timeout=60)
    assert got == [[4, 5]]
    assert isinstance(errors[0], ZeroDivisionError)


def test_close_join_terminate_and_a_closed_pool(tmp_path: Path) -> None:
    pool = pc.Pool(backend="local", config={"log_dir": str(tmp_path)})
    with pytest.raises(ValueError, match="still running"):
        pool.join()
    slow = pool.map_async(shutil.which, ["true", "false"])
    pool.close()
    with pytest.raises(ValueError, match="Pool not running"):
        pool.map(abs, [1])
    pool.join()
    assert slow.ready()
    other = pc.Pool(backend="local", config={"log_dir": str(tmp_path)})
    sleeper = other.apply_async(__import__("time").sleep, (120,))
    other.terminate()
    with pytest.raises(pc.JobFailedError):
        sleeper.get(timeout=60)  # cancelled: over long before the two minutes


def test_get_with_a_timeout_raises_multiprocessings_timeout_error(pool: pc.Pool) -> None:
    result = pool.apply_async(__import__("time").sleep, (60,))
    with pytest.raises(multiprocessing.TimeoutError):
        result.get(timeout=0.5)
    assert not result.ready()


def test_initializer_runs_in_every_task_before_its_items(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    with pc.Pool(
        backend="local", initializer=set_flag, initargs=(str(flag),),
        env={"FLAG_FILE": str(flag)}, config={"log_dir": str(tmp_path)},
    ) as pool:  # fmt: skip
        assert pool.map(read_flag, range(6), chunksize=3) == [f"{x}:initialised" for x in range(6)]


def test_processes_sets_the_throttle_and_bad_keywords_fail_at_once(tmp_path: Path) -> None:
    pool = pc.Pool(4, partition="short", config={"log_dir": str(tmp_path)})
    assert pool._spec.resources.array_parallelism == 4
    pool.terminate()
    with pytest.raises(pc.SpecError, match="processes"):
        pc.Pool(0)
    with pytest.raises(pc.SpecError, match="mem_gb"):
        pc.Pool(mem_gb="lots")
    with pytest.raises(TypeError):
        pc.Pool(memory="4G")  # type: ignore[call-arg]


def test_a_function_the_worker_cannot_import_raises_promptly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's ModuleNotFoundError, at once: never a hang (pypoolparty polls forever)."""
    module = unimportable_module(tmp_path, monkeypatch)
    with pc.Pool(backend="local", config={"log_dir": str(tmp_path / "logs")}) as pool:
        with pytest.raises(ModuleNotFoundError, match="vanishing_module"):
            pool.map(module.triple, range(40), chunksize=10)
        with pytest.raises(ModuleNotFoundError, match="vanishing_module"):
            pool.map(module.triple, range(2))  # one task per item: the same error


def unimportable_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    """A module imported here whose file is gone by the time a worker looks for it."""
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "vanishing_module.py").write_text("def triple(x):\n    return 3 * x\n")
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("vanishing_module")
    monkeypatch.setitem(sys.modules, "vanishing_module", module)
    shutil.rmtree(folder)
    return module


def block_until(paths: tuple[str, str]) -> str:
    """Say where it runs (pid, and the Slurm job id there), then wait for ``go`` (bounded)."""
    import os
    import time

    started, go = paths
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array else os.environ.get("SLURM_JOB_ID", "")
    Path(started).write_text(f"{os.getpid()} {job}")
    deadline = time.monotonic() + 600
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return "went"


def wait_for(predicate, timeout: float = 120.0) -> None:
    """Poll ``predicate`` until true (the condition is the synchronisation; bounded)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting for its parent does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def said(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> str:
    """What paracore announced: on stderr, or through logging when it is set up (pytest's)."""
    return capsys.readouterr().err + caplog.text


def test_leaving_the_pool_after_imap_cancels_its_tasks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A with-block left while imap's tasks still run cancels them, and says so in one line."""
    started, go = tmp_path / "started", tmp_path / "go"
    with pc.Pool(1, backend="local", config={"log_dir": str(tmp_path / "logs")}) as pool:
        results = pool.imap(block_until, [(str(started), str(go))])
        wait_for(started.exists)
    pid = int(started.read_text().split()[0])
    wait_for(lambda: not _alive(pid))
    assert "Pool terminated: cancelled 1 unfinished item(s)" in said(capsys, caplog)
    with pytest.raises(pc.JobFailedError):
        next(results)


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_in_map_terminates_the_pool(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """KeyboardInterrupt while map waits cancels the map's tasks, then goes on."""
    started, go = tmp_path / "started", tmp_path / "go"
    pool = pc.Pool(1, backend="local", config={"log_dir": str(tmp_path / "logs")})

    def interrupt_once_started() -> None:
        wait_for(started.exists)
        import _thread

        _thread.interrupt_main()

    interrupt = threading.Thread(target=interrupt_once_started, daemon=True)
    interrupt.start()
    with pytest.raises(KeyboardInterrupt):
        pool.map(block_until, [(str(started), str(go))])
    pid = int(started.read_text().split()[0])
    wait_for(lambda: not _alive(pid))
    assert "cancelled 1 unfinished item(s)" in said(capsys, caplog)
    with pytest.raises(ValueError, match="Pool not running"):
        pool.map(abs, [1])


# ---------------------------------------------------------------- multiprocessing's semantics


def numbers_then_fail(count: int) -> Iterator[int]:
    """Yield ``count`` numbers, then fail as an input iterable may."""
    yield from range(count)
    raise KeyError("the input broke")


def count_call(path: str) -> int:
    """Append a line to ``path`` (how often a function ran) and return the count so far."""
    with open(path, "a") as out:
        out.write("ran\n")
    return len(Path(path).read_text().splitlines())


def test_an_input_error_comes_out_of_imap_at_its_position(pool: pc.Pool) -> None:
    """imap yields the results of the items read before the iterable failed, then raises the
    iterable's own error; imap_unordered gives them in any order, then raises."""
    results = pool.imap(abs, numbers_then_fail(3))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyError, match="the input broke"):
        next(results)
    unordered = pool.imap_unordered(abs, numbers_then_fail(2))
    assert sorted([next(unordered), next(unordered)]) == [0, 1]
    with pytest.raises(KeyError):
        next(unordered)
    with pytest.raises(KeyError):
        pool.map(abs, numbers_then_fail(2))


def test_callbacks_have_run_when_wait_or_get_return(pool: pc.Pool) -> None:
    """By the time wait() returns or get() returns or raises, the callback has run."""
    got: list[object] = []
    errors: list[BaseException] = []
    pool.apply_async(abs, (-3,), callback=got.append).wait()
    assert got == [3]
    failing = pool.apply_async(square, (7,), error_callback=errors.append)
    with pytest.raises(ZeroDivisionError):
        failing.get(timeout=120)
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)


def test_a_failed_calls_cause_is_the_workers_traceback(pool: pc.Pool) -> None:
    """The re-raised exception's __cause__ holds the worker's traceback with its source lines."""
    with pytest.raises(ZeroDivisionError) as raised:
        pool.apply(square, (7,))
    cause = raised.value.__cause__
    assert isinstance(cause, pc.RemoteTraceback)
    assert 'raise ZeroDivisionError(f"no square for {x}")' in str(cause)
    assert "in square" in str(cause)


def test_errors_have_multiprocessings_types(pool: pc.Pool) -> None:
    """Unpicklable work is a PicklingError and a TypeError; a bad initializer a TypeError; a bad
    maxtasksperchild a ValueError; all before anything is submitted."""
    import pickle

    lock = threading.Lock()
    with pytest.raises(pickle.PicklingError) as raised:
        pool.map(abs, [lock])
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, pc.SpecError)
    with pytest.raises(TypeError):
        pool.apply(lambda: lock)
    with pytest.raises(TypeError, match="initializer"):
        pc.Pool(initializer=1)  # type: ignore[arg-type]
    for bad in (0, -1, 0.5, "12"):
        with pytest.raises(ValueError, match="maxtasksperchild"):
            pc.Pool(maxtasksperchild=bad)  # type: ignore[arg-type]


def test_a_running_pool_left_to_the_garbage_collector_warns() -> None:
    """A pool neither closed nor terminated warns with a ResourceWarning when collected."""
    import gc

    with pytest.warns(ResourceWarning, match="unclosed running pool"):
        pool = pc.Pool(backend="inprocess")
        del pool
        gc.collect()


def test_the_same_map_twice_runs_twice(pool: pc.Pool, tmp_path: Path) -> None:
    """A pool is not a cache: calling the same map again runs the function again."""
    log = str(tmp_path / "calls")
    assert pool.map(count_call, [log]) == [1]
    assert pool.map(count_call, [log]) == [2]


def test_return_exceptions_puts_each_failure_in_its_place(pool: pc.Pool) -> None:
    """With return_exceptions=True every item comes back: a value, or its own exception."""
    out = pool.map(square, [6, 7, 8], return_exceptions=True)
    assert out[0] == 36 and out[2] == 64
    assert isinstance(out[1], ZeroDivisionError)


@pytest.mark.usefixtures("ctrl_c")
def test_ctrl_c_while_the_pool_submits_cancels_what_was_submitted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """SIGINT during the submission itself lands once the work is the pool's: its tasks are
    cancelled too (none is left running unannounced)."""
    import os
    import signal

    from paracore.backends.local import LocalBackend

    class InterruptedLocal(LocalBackend):
        """The local backend, interrupted by Ctrl-C right after it started the tasks."""

        def submit(self, spec, tasks, describes, *, after=()):
            jobs = super().submit(spec, tasks, describes, after=after)
            os.kill(os.getpid(), signal.SIGINT)
            return jobs

    started, go = tmp_path / "started", tmp_path / "go"
    session = pc.Session(backends={"local": InterruptedLocal()})
    with pc.use_session(session):
        pool = pc.Pool(1, backend="local", config={"log_dir": str(tmp_path / "logs")})
        with pytest.raises(KeyboardInterrupt):
            pool.map(block_until, [(str(started), str(go))])
    (submitted,) = (tmp_path / "logs" / "block_until").glob("*_submitted.pkl")
    controller = int(submitted.name.split("_")[0])  # a local job's id is its process id
    wait_for(lambda: not _alive(controller))
    if started.exists():  # it got as far as starting: it is gone too
        wait_for(lambda: not _alive(int(started.read_text().split()[0])))
    assert "cancelled 1 unfinished item(s)" in said(capsys, caplog)
