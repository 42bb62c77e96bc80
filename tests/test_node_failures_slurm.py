"""Awkward failures on the real Slurm, as users meet them: an exception that cannot be
rebuilt, a process that ends inside its payload, a result that cannot be pickled.

Each test is a few short array tasks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import paracore as pc
from paracore.backends.slurm.jobs import RESULT_GRACE_S
from paracore.errors import JobFailedError
from tests.slurm_helpers import QUICK
from tests.test_node_failures import exit_at_two, lock_at_two, raise_two_args

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]


def test_an_exception_that_cannot_be_rebuilt_keeps_its_text_and_the_next_items() -> None:
    alone = pc.map_func(raise_two_args, [2], **QUICK)
    chunked = pc.map_func(raise_two_args, range(4), chunk_size=4, **QUICK)
    out = pc.gather([*alone, *chunked], timeout=300, return_exceptions=True)
    assert out[1:3] == [0, 10] and out[4] == 30  # the item after it kept its result
    for error, handle in ((out[0], alone[0]), (out[3], chunked[2])):
        assert isinstance(error, pc.RemoteError), error
        assert error.exc_type == "tests.test_node_failures.TwoArgs"
        assert error.exc_message == "code 2: no good"
        assert error.job_id == handle.job_id and f"job {handle.job_id}" in str(error)
        assert "could not be rebuilt here" in str(error)
        assert "raise TwoArgs(x, " in str(error)


def _exited(error: object, handle: object) -> None:
    assert isinstance(error, JobFailedError) and not isinstance(error, pc.RemoteError), error
    assert "its process exited without writing a result" in str(error)
    assert "COMPLETED (exit 0:0)" in str(error)  # what sacct says of an os._exit(0)
    stdout = getattr(handle, "stdout_path", None)
    assert stdout and f"logs: {stdout}" in str(error) and Path(stdout).exists()


def test_a_process_that_exits_inside_its_payload_is_reported_without_a_wait() -> None:
    """os._exit(0): sacct says COMPLETED and no result file comes. Reported as soon as the
    job ended, well inside the file system grace it used to wait for (then blamed on the
    file system); a task of its own and in a chunk, whose earlier items keep their results."""
    alone = pc.map_func(exit_at_two, range(3), chunk_size=1, **QUICK)
    chunked = pc.map_func(exit_at_two, range(4), chunk_size=4, **QUICK)
    out = pc.gather([*alone, *chunked], timeout=RESULT_GRACE_S, return_exceptions=True)
    assert out[:2] == [0, 10] and out[3:5] == [0, 10]
    _exited(out[2], alone[2])
    for error, handle in zip(out[5:], chunked[2:], strict=True):
        _exited(error, handle)


def test_a_pool_result_that_cannot_be_pickled_names_its_type() -> None:
    with pc.Pool(2, progress=False, **QUICK) as pool:
        results = pool.imap(lock_at_two, range(4))
        assert [next(results), next(results)] == [0, 10]
        with pytest.raises(TypeError, match=r"the result, a _thread\.lock, could not be pickled"):
            next(results)
        assert next(results) == 30
