"""What an identical submission re-uses, on the real Slurm: a collected chunked map runs again
with new jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

import paracore as pc

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_workdir")]

REPO = Path(__file__).resolve().parents[1]


def offset_plus(pair: tuple[str, int]) -> int:
    """The item plus the number in ``<folder>/offset`` at the moment it runs."""
    folder, x = pair
    return x + int((Path(folder) / "offset").read_text())


def test_a_collected_chunked_map_runs_again_with_new_jobs(tmp_path: Path) -> None:
    """Once its items were gathered, the identical map is run again: new array, new values
    (before: the new array skipped every item and the old values came back)."""
    (tmp_path / "offset").write_text("0")
    items = [(str(tmp_path), x) for x in range(6)]
    first = pc.map_func(offset_plus, items, chunk_size=3, time_min=2, mem_gb=0.25)
    assert pc.gather(first, timeout=300) == list(range(6))
    (tmp_path / "offset").write_text("100")
    second = pc.map_func(offset_plus, items, chunk_size=3, time_min=2, mem_gb=0.25)
    assert {c.job_id for c in second.map.chunks}.isdisjoint(c.job_id for c in first.map.chunks)
    assert pc.gather(second, timeout=300) == [100 + x for x in range(6)]
