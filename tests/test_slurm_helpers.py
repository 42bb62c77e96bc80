"""Unit tests of the sacct parsing helpers (no Slurm needed)."""

from __future__ import annotations

import pytest

from tests.slurm_helpers import SacctRow, parse_elapsed_s, parse_mem_mb


@pytest.mark.parametrize(
    ("text", "mb"),
    [
        ("116.28M", 116.28),
        ("2048K", 2.0),
        ("1.5G", 1536.0),
        ("0", 0.0),
        ("", None),
        ("500Mn", 500.0),
        ("1048576", 1.0),
    ],
)
def test_parse_mem_mb(text, mb):
    assert parse_mem_mb(text) == (pytest.approx(mb) if mb is not None else None)


@pytest.mark.parametrize(
    ("text", "s"),
    [
        ("00:00:04", 4),
        ("01:02:03", 3723),
        ("1-00:00:01", 86401),
        ("05:00", 300),
        ("UNLIMITED", None),
    ],
)
def test_parse_elapsed_s(text, s):
    assert parse_elapsed_s(text) == s


def test_row_properties():
    row = SacctRow(
        job_id="12.batch",
        job_name="batch",
        state="OUT_OF_MEMORY",
        state_raw="OUT_OF_MEMORY",
        exit_code="0:125",
        elapsed="00:00:07",
        max_rss="3.06M",
        req_mem="",
        timelimit="",
        partition="",
        start="2026-01-01T00:00:00",
        end="2026-01-01T00:00:07",
        node_list="vm",
    )
    assert row.step == "batch"
    assert row.terminal
    assert row.elapsed_s == 7
    assert row.max_rss_mb == pytest.approx(3.06)
    assert row.req_mem_mb is None
