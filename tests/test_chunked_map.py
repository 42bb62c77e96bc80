"""Chunked maps on this machine: per-item results and errors, retries that re-pack only the
failed items, checks before submission, lazy handles, re-attaching to identical work."""

from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pytest

import paracore as pc
from paracore.core.cluster import PartitionLimits
from paracore.core.resolved import resolve_spec
from paracore.runtime.chunks import ChunkTask, items_blob, items_path, results_path, write_items
from paracore.shell.chunked_map import ItemHandle, ItemHandles


def double_or_raise(x: int) -> int:
    if x % 5 == 3:
        raise ValueError(f"item {x} is bad")
    return 2 * x


def flaky(path_and_x: tuple[str, int]) -> int:
    """Raise the first time each odd item runs (a marker file remembers), then succeed."""
    folder, x = path_and_x
    marker = Path(folder) / f"seen-{x}"
    if x % 2 and not marker.exists():
        marker.touch()
        raise OSError(f"transient failure of {x}")
    return x


def options(tmp_path: Path, **extra: object) -> dict[str, object]:
    return {"backend": "local", "config": {"log_dir": str(tmp_path / "logs")}, **extra}


def test_items_keep_their_results_and_errors_in_input_order(tmp_path: Path) -> None:
    handles = pc.map_func(double_or_raise, range(20), chunk_size=4, **options(tmp_path))
    assert isinstance(handles, ItemHandles)
    assert len(handles.map.chunks) == 5
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    for x, value in enumerate(out):
        if x % 5 == 3:
            assert isinstance(value, pc.RemoteError)
            assert value.exc_type == "builtins.ValueError"
            assert f"item {x} is bad" in str(value)
            assert isinstance(value.__cause__, ValueError)  # the original exception
            assert f"items[{x}]" in str(value)
        else:
            assert value == 2 * x
    with pytest.raises(pc.RemoteError, match="item 3 is bad"):
        handles[3].result()
    assert handles[4].result() == 8
    assert handles[3].state == "FAILED" and handles[4].state == "COMPLETED"
    assert handles[4].job_id == handles[5].job_id  # one chunk, one array task


def test_gather_raises_the_first_failure_in_input_order(tmp_path: Path) -> None:
    handles = pc.map_func(double_or_raise, range(12), chunk_size=3, **options(tmp_path))
    with pytest.raises(pc.RemoteError, match="item 3 is bad"):
        pc.gather(handles, timeout=120)


def test_retries_re_pack_only_the_failed_items(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    items = [(str(marks), x) for x in range(12)]
    handles = pc.map_func(
        flaky, items, chunk_size=4, retries=1, retry_backoff_s=0, **options(tmp_path)
    )
    assert pc.gather(handles, timeout=180) == list(range(12))
    chunked = handles.map
    assert chunked.waves >= 2  # the failures of each round go together in a new wave
    first_wave = chunked.chunks[:3]
    retried = chunked.chunks[3:]
    assert {h.chunk.job_id for h in handles if h.index % 2} == {h.job_id for h in retried}
    assert {handles[i].chunk.job_id for i in range(0, 12, 2)} <= {h.job_id for h in first_wave}
    assert [h.tries for h in handles] == [x % 2 for x in range(12)]


def test_an_item_still_failing_after_its_retries_says_how_often_it_ran(tmp_path: Path) -> None:
    handles = pc.map_func(
        double_or_raise, range(10), chunk_size=5, retries=1, retry_backoff_s=0,
        **options(tmp_path),
    )  # fmt: skip
    error = handles[3].exception(timeout=180)
    assert isinstance(error, pc.RemoteError)
    assert "tried 2 times" in str(error)
    assert handles[4].result(timeout=1) == 8


def test_commands_in_chunks_give_command_results_and_exit_codes(tmp_path: Path) -> None:
    cmds = [f"echo line-{i}" if i != 4 else "echo oops >&2; exit 7" for i in range(9)]
    handles = pc.map_cmds(cmds, chunk_size=3, **options(tmp_path))
    assert isinstance(handles, ItemHandles)
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert [r.stdout for i, r in enumerate(out) if i != 4] == [
        f"line-{i}\n" for i in range(9) if i != 4
    ]
    assert isinstance(out[4], pc.CommandFailedError)
    assert out[4].returncode == 7
    assert "oops" in out[4].stderr_tail


def test_a_result_that_cannot_be_pickled_fails_that_item_alone(tmp_path: Path) -> None:
    def make_lock(x: int) -> object:
        return threading.Lock() if x == 2 else x

    handles = pc.map_func(make_lock, range(6), chunk_size=3, **options(tmp_path))
    out = pc.gather(handles, timeout=120, return_exceptions=True)
    assert out[:2] == [0, 1] and out[3:] == [3, 4, 5]
    assert isinstance(out[2], pc.RemoteError)
    assert "the result, a _thread.lock, could not be pickled" in str(out[2])


def test_small_maps_and_chunk_size_1_keep_one_task_per_item(tmp_path: Path) -> None:
    small = pc.map_func(abs, [-1, -2, -3], **options(tmp_path))  # "auto": 3 items, 1 per task
    assert all(isinstance(h, pc.SubmitHandle) for h in small)
    assert pc.gather(small, timeout=120) == [1, 2, 3]
    single = pc.map_func(abs, range(-20, 0), chunk_size=1, **options(tmp_path))
    assert len({h.job_id for h in single}) == 20


def test_auto_packs_a_large_map_into_a_few_tasks_per_core(tmp_path: Path) -> None:
    import os

    handles = pc.map_func(abs, range(-500, 0), **options(tmp_path))
    assert isinstance(handles, ItemHandles)
    assert len(handles.map.chunks) == 4 * (os.cpu_count() or 1)
    assert pc.gather(handles, timeout=180) == list(range(500, 0, -1))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": "big"}, "chunk_size"),
        ({"pilot": {"time_min": 3}}, "pilot"),
    ],
)
def test_bad_chunking_keywords_fail_before_submitting(
    tmp_path: Path, kwargs: dict[str, object], field: str
) -> None:
    with pytest.raises(pc.SpecError, match=field):
        pc.map_func(abs, range(100), **options(tmp_path, **kwargs))
    assert pc.Session().store().runs() == []


def test_an_unpicklable_item_or_missing_program_is_named_before_submitting(
    tmp_path: Path,
) -> None:
    items: list[object] = list(range(30))
    items[17] = threading.Lock()
    with pytest.raises(pc.SpecError, match=r"items\[17\]"):
        pc.map_func(repr, items, chunk_size=5, **options(tmp_path))
    cmds = ["true"] * 20 + ["no-such-program-xyz --flag"]
    with pytest.raises(pc.SpecError, match=r"cmds\[20\].*no-such-program-xyz"):
        pc.map_cmds(cmds, chunk_size=5, **options(tmp_path))
    assert pc.Session().store().runs() == []


def test_item_handles_are_a_lazy_sequence(tmp_path: Path) -> None:
    handles = pc.map_func(abs, range(-40, 0), chunk_size=10, **options(tmp_path))
    assert len(handles) == 40
    assert handles[-1].index == 39
    assert [h.index for h in handles[5:8]] == [5, 6, 7]
    with pytest.raises(IndexError):
        handles[40]
    assert isinstance(handles[0], ItemHandle)
    assert [h.result(timeout=120) for h in handles] == list(range(40, 0, -1))


def test_identical_work_re_attaches_to_the_same_chunks(tmp_path: Path) -> None:
    first = pc.map_func(abs, range(-30, 0), chunk_size=10, **options(tmp_path))
    again = pc.map_func(abs, range(-30, 0), chunk_size=10, **options(tmp_path))
    assert [h.job_id for h in again] == [h.job_id for h in first]
    assert pc.gather(again, timeout=120) == list(range(30, 0, -1))
    fresh = pc.map_func(abs, range(-30, 0), chunk_size=10, resume="never", **options(tmp_path))
    assert fresh[0].job_id != first[0].job_id
    assert fresh.map.folder != first.map.folder


def test_cancelling_every_item_of_a_chunk_cancels_the_chunk(tmp_path: Path) -> None:
    handles = pc.map_cmds(["sleep 60"] * 4, chunk_size=2, **options(tmp_path))
    for handle in handles[:2]:
        handle.cancel()
    assert handles[0].state == "CANCELLED"
    error = handles[1].exception(timeout=5)
    assert error is not None and error.failure_class is pc.FailureClass.CANCELLED
    assert handles.map.chunks[0].exception(timeout=30) is not None  # long before its 120 s
    handles.map.cancel()
    assert all(h.done() for h in handles)
    assert handles.map.chunks[1].exception(timeout=30) is not None


def _run_chunk(folder: Path, fn: object, pairs: list[tuple[int, object]]) -> dict[str, int]:
    import cloudpickle

    (folder / "fn.pkl").write_bytes(cloudpickle.dumps(fn))
    positions = [p for p, _ in pairs]
    write_items(items_path(folder, 0), items_blob(positions, [i for _, i in pairs]))
    return ChunkTask(str(folder), 0, "call")()


def test_a_chunk_run_again_skips_the_items_an_earlier_attempt_finished(tmp_path: Path) -> None:
    """A chunk killed half-way keeps its finished items; its next attempt runs only the rest."""
    seen = tmp_path / "seen"

    def record(x: int) -> int:
        with seen.open("a") as out:
            out.write(f"{x}\n")
        return x * 10

    with results_path(tmp_path, 0).open("wb") as out:  # an earlier attempt finished 10 and 11
        for position in (10, 11):
            out.write(pickle.dumps((position, "ok", position * 10)))
        out.write(b"\x80\x05cut short")  # and was killed while writing the next record
    counts = _run_chunk(tmp_path, record, [(p, p) for p in range(10, 15)])
    assert seen.read_text().split() == ["12", "13", "14"]
    assert counts == {"ok": 3, "err": 0}


def test_gather_shows_progress_when_asked_and_is_quiet_otherwise(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    handles = pc.map_func(double_or_raise, range(10), chunk_size=5, **options(tmp_path))
    pc.gather(handles, timeout=120, return_exceptions=True, progress=True)
    shown = capfd.readouterr().err
    assert "10/10" in shown and "done 8" in shown and "failed 2" in shown
    pc.gather(handles, timeout=120, return_exceptions=True)  # stderr is not a terminal here
    assert "10/10" not in capfd.readouterr().err


def test_progress_counts_pending_running_done_and_failed() -> None:
    from paracore.shell.progress import progress_wanted, tally

    class Fake:
        def __init__(self, final: bool, failed: bool, state: str) -> None:
            self.final, self.failed, self.state = final, failed, state

    handles = [Fake(True, False, "COMPLETED"), Fake(True, True, "FAILED"),
               Fake(False, False, "RUNNING"), Fake(False, False, "PENDING"),
               Fake(False, False, "PENDING")]  # fmt: skip
    assert tally(handles) == {"done": 1, "failed": 1, "running": 1, "pending": 2}
    assert progress_wanted(False, 100) is False and progress_wanted(True, 1) is True


def read_env(name: str) -> str | None:
    import os

    return os.environ.get(name)


def test_every_item_of_a_chunk_sees_the_specs_environment(tmp_path: Path) -> None:
    handles = pc.map_func(
        read_env, ["PARACORE_T_VAR"] * 6, chunk_size=3, env={"PARACORE_T_VAR": "set"},
        **options(tmp_path),
    )  # fmt: skip
    assert pc.gather(handles, timeout=120) == ["set"] * 6


class SizedBackend:
    """Just enough of a backend for choosing a chunk size: a partition of ``cpus`` cores."""

    def __init__(self, cpus: int) -> None:
        self.cpus = cpus

    def limits(self, partition: str | None) -> PartitionLimits:
        return PartitionLimits(name=partition or "p", total_cpus=self.cpus, node_cpus=8)


def chunks_for(n: int, spec: pc.JobSpec, cpus: int = 64, pilot: object = None) -> int:
    from paracore.core.chunking import pack
    from paracore.shell.maps import chunk_size_of

    size = chunk_size_of(
        "auto", resolve_spec(spec), SizedBackend(cpus), n, max_array_size=1001, pilot=pilot
    )
    return len(pack(range(n), size))


def test_auto_chunking_reads_the_partitions_cores_and_an_explicit_throttle() -> None:
    spec = pc.JobSpec.call(abs, 0)
    assert chunks_for(10_000, pc.with_resources(cpus_per_task=4, spec=spec)) == 4 * 16
    assert chunks_for(10_000, pc.with_resources(array_parallelism=5, spec=spec)) == 20
    # "auto" is not a cap here: 4 x 64 cores = 256 tasks, i.e. chunks of 40 (250 of them)
    assert chunks_for(10_000, pc.with_resources(array_parallelism="auto", spec=spec)) == 250
    assert chunks_for(100, spec) == 100  # a small map: one task per item
    assert chunks_for(10_000_000, spec, cpus=100_000) == 1001  # never above MaxArraySize


def test_a_pilots_durations_make_chunks_of_at_least_a_minute() -> None:
    from types import SimpleNamespace

    pilot = SimpleNamespace(recommendation=SimpleNamespace(duration=SimpleNamespace(p95=0.5)))
    spec = pc.with_resources(time_min=60, spec=pc.JobSpec.call(abs, 0))
    assert chunks_for(10_000, spec, cpus=1000, pilot=pilot) == -(-10_000 // 120)
