"""Awkward failures on the real Slurm, as users meet them: an exception that cannot be
rebuilt.

Each test is a few short array tasks.
"""

from __future__ import annotations

import pytest

import paracore as pc
from tests.slurm_helpers import QUICK
from tests.test_node_failures import raise_two_args

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
