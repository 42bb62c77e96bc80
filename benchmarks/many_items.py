"""P2: 100 000 tiny items end to end: paracore vs dask-jobqueue vs a hand-packed sbatch array.

- paracore: ``map_func(double, items)`` with the default ``chunk_size="auto"``, then
  ``gather``;
- dask-jobqueue: a ``SLURMCluster`` of 2 one-core workers, ``client.map`` then
  ``client.gather`` (worker start-up included);
- hand-packed: the items pickled into as many files as paracore made chunks, one bare
  ``sbatch --array`` task per file doing the same work, results read back.

Targets: paracore at least 5x faster than dask-jobqueue, within 1.3x of the hand-packed array.

    pip install -e '.[bench]'
    python benchmarks/many_items.py [N]
"""

from __future__ import annotations

import pickle
import sys
import tempfile
import time
from pathlib import Path

from common import bare_array, machine, table

import paracore
from paracore.core.chunking import pack
from paracore.shell.chunked_map import ItemHandles


def double(x: int) -> int:
    """The work: tiny, so everything else shows."""
    return 2 * x


def run_paracore(items: list[int], folder: Path) -> tuple[float, int]:
    start = time.perf_counter()
    handles = paracore.map_func(
        double, items, time_min=10, mem_gb=0.5, job_name="p2-paracore",
        config={"log_dir": str(folder)}, resume="never",
    )  # fmt: skip
    results = paracore.gather(handles, timeout=3600, progress=False)
    elapsed = time.perf_counter() - start
    assert results == [2 * x for x in items]
    assert isinstance(handles, ItemHandles)
    return elapsed, len(handles.map.chunks)


def run_hand_packed(items: list[int], folder: Path, tasks: int) -> float:
    folder.mkdir(parents=True)
    start = time.perf_counter()
    chunks = pack(range(len(items)), -(-len(items) // tasks))
    for i, chunk in enumerate(chunks):
        (folder / f"in-{i}.pkl").write_bytes(pickle.dumps(items[chunk.start : chunk.stop]))
    body = (
        "import pickle\n"
        f"folder = {str(folder)!r}\n"
        "items = pickle.load(open(f'{folder}/in-{TASK}.pkl', 'rb'))\n"
        "pickle.dump([2 * x for x in items], open(f'{folder}/out-{TASK}.pkl', 'wb'))\n"
    )
    bare_array(folder, len(chunks), body, name="p2-bare", mem="500M")
    results = [
        x for i in range(len(chunks)) for x in pickle.loads((folder / f"out-{i}.pkl").read_bytes())
    ]
    elapsed = time.perf_counter() - start
    assert results == [2 * x for x in items]
    return elapsed


def run_dask(items: list[int], folder: Path) -> float:
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    start = time.perf_counter()
    with SLURMCluster(
        cores=1, processes=1, memory="1GB", walltime="00:30:00", log_directory=str(folder),
        job_name="p2-dask",
    ) as cluster, Client(cluster) as client:  # fmt: skip
        cluster.scale(jobs=2)
        results = client.gather(client.map(double, items))
    elapsed = time.perf_counter() - start
    assert results == [2 * x for x in items]
    return elapsed


def main(n: int) -> None:
    items = list(range(n))
    print(machine())
    with tempfile.TemporaryDirectory(dir=".", prefix="bench-p2-") as tmp:
        folder = Path(tmp).absolute()
        ours, tasks = run_paracore(items, folder / "paracore")
        bare = run_hand_packed(items, folder / "bare", tasks)
        dask = run_dask(items, folder / "dask")
    rows = [
        ("paracore map_func (auto chunks)", f"{ours:.1f}", tasks, "1.00"),
        ("hand-packed sbatch --array", f"{bare:.1f}", tasks, f"{bare / ours:.2f}"),
        ("dask-jobqueue, 2 one-core workers", f"{dask:.1f}", 2, f"{dask / ours:.2f}"),
    ]
    print(f"{n} tiny items")
    print(table(rows, ["system", "end to end (s)", "array tasks / workers", "time / paracore"]))
    print(f"paracore vs dask-jobqueue: {dask / ours:.1f}x faster (target >= 5)")
    print(f"paracore / hand-packed: {ours / bare:.2f} (target <= 1.3)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
