"""Parsers of sinfo/scontrol output (captured text), the pure cluster checks, and the Slurm
backend's check before submission."""

# ruff: noqa: E501, W291  (captured scontrol output is kept byte for byte)

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

import paracore as pc
from paracore.backends.slurm import SlurmBackend
from paracore.backends.slurm.cluster_queries import (
    ClusterQueries,
    parse_idle_cpus,
    parse_max_time,
    parse_nodes,
    parse_partitions,
    parse_records,
)
from paracore.core.cluster import ClusterInfo, Node, Partition, PartitionLimits
from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.rules import choose_parallelism, validate
from paracore.errors import SchedulerUnreachable
from paracore.testing import FakeClock

# Captured on the test cluster (Slurm 22.05.8): `scontrol -o show partition`.
SCONTROL_PARTITIONS = """\
PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=19284M,node=1,billing=2
PartitionName=short AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=00:05:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=19284M,node=1,billing=2
PartitionName=long AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=3-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=19284M,node=1,billing=2
PartitionName=compute AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED MaxTime=2-00:00:00 MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=2 TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED TRES=cpu=2,mem=19284M,node=1,billing=2
"""

# Captured on the test cluster: `scontrol show node` (multi-line form; OS has spaces).
SCONTROL_NODE = """\
NodeName=vm Arch=x86_64 CoresPerSocket=1 
   CPUAlloc=0 CPUEfctv=2 CPUTot=2 CPULoad=1.35
   AvailableFeatures=(null)
   ActiveFeatures=(null)
   Gres=(null)
   NodeAddr=127.0.0.1 NodeHostName=vm Version=22.05.8
   OS=Linux 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0 
   RealMemory=19284 AllocMem=0 FreeMem=23249 Sockets=2 Boards=1
   State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A
   Partitions=debug,short,long,compute 
   BootTime=2026-11-22T03:00:34 SlurmdStartTime=2026-11-22T03:20:11
   LastBusyTime=2026-11-22T03:21:24
   CfgTRES=cpu=2,mem=19284M,billing=2
   AllocTRES=
   CapWatts=n/a
   CurrentWatts=0 AveWatts=0
   ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s

"""

# A bigger (made-up) cluster in the one-line form: two node sizes, a gpu partition.
SCONTROL_NODES_ONELINE = """\
NodeName=c01 Arch=x86_64 CPUAlloc=8 CPUTot=32 RealMemory=128000 OS=Linux 5.14 #1 SMP State=MIXED Partitions=compute,debug
NodeName=c02 Arch=x86_64 CPUAlloc=0 CPUTot=64 RealMemory=512000 State=IDLE Partitions=compute
NodeName=g01 Arch=x86_64 CPUTot=16 RealMemory=256000 State=IDLE Partitions=gpu
"""

# `sinfo -h -o '%P|%C'`: allocated/idle/other/total cores; a partition may span lines.
SINFO_CPUS = """\
debug*|1/1/0/2
short|1/1/0/2
compute|8/24/0/32
compute|0/64/0/64
gpu|0/0/16/16
"""


def test_parse_partitions_from_captured_scontrol() -> None:
    """MaxTime, Default and TotalCPUs come out of `scontrol -o show partition`."""
    parts = {p.name: p for p in parse_partitions(SCONTROL_PARTITIONS)}
    assert list(parts) == ["debug", "short", "long", "compute"]
    assert parts["debug"] == Partition("debug", None, "UNLIMITED", True, "UP", 2)
    assert (parts["short"].max_time_min, parts["short"].max_time_text) == (5, "00:05:00")
    assert parts["long"].max_time_min == 3 * 24 * 60
    assert parts["compute"].max_time_min == 2 * 24 * 60
    assert not parts["short"].default


def test_parse_nodes_from_multiline_scontrol() -> None:
    """CPUTot, RealMemory and Partitions come out of `scontrol show node`, OS spaces and all."""
    (node,) = parse_nodes(SCONTROL_NODE)
    assert node == Node("vm", 2, 19284, ("debug", "short", "long", "compute"), "IDLE")
    assert (
        parse_records(SCONTROL_NODE)[0]["OS"] == "Linux 6.18.44-fc-v595 #1 SMP PREEMPT_DYNAMIC @0"
    )


def test_parse_nodes_one_line_form() -> None:
    """The `-o` form parses the same way, one node per line."""
    nodes = parse_nodes(SCONTROL_NODES_ONELINE)
    assert [(n.name, n.cpus, n.memory_mb, n.partitions) for n in nodes] == [
        ("c01", 32, 128000, ("compute", "debug")),
        ("c02", 64, 512000, ("compute",)),
        ("g01", 16, 256000, ("gpu",)),
    ]


def test_parse_idle_cpus_adds_lines_and_strips_the_default_star() -> None:
    """Idle cores per partition, summed over sinfo's lines."""
    assert parse_idle_cpus(SINFO_CPUS) == {"debug": 1, "short": 1, "compute": 88, "gpu": 0}
    assert parse_idle_cpus("") == {}


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("UNLIMITED", None), ("INFINITE", None), ("00:05:00", 5), ("1-00:00:00", 1440), ("30", 30)],
)
def test_parse_max_time(text: str, minutes: int | None) -> None:
    """MaxTime in scontrol's forms, to minutes (None when unlimited)."""
    assert parse_max_time(text) == minutes


INFO = ClusterInfo(parse_partitions(SCONTROL_PARTITIONS), parse_nodes(SCONTROL_NODE))


def _spec(**resources) -> ResolvedSpec:
    return resolve_spec(pc.with_resources(pc.JobSpec.command("true"), **resources))


def test_validate_accepts_what_fits() -> None:
    """A spec the cluster can run has no problems."""
    assert validate(_spec(partition="short", time=5, mem="18G", cpus=2), INFO) == ()
    assert validate(_spec(time="30d"), INFO) == ()  # debug: no limit


def test_validate_unknown_partition_lists_the_real_ones() -> None:
    """An unknown partition names the value, its origin and the real partitions."""
    (problem,) = validate(_spec(partition="gpu"), INFO, {"partition": "project file /p.yaml:7"})
    assert str(problem.error()) == (
        "partition='gpu' (from project file /p.yaml:7): no such partition on this cluster; "
        "partitions are: debug (default), short, long, compute"
    )


def test_validate_walltime_above_max_time() -> None:
    """Too long a walltime quotes the partition's MaxTime."""
    (problem,) = validate(_spec(partition="short", time=10), INFO, {"time_min": "call"})
    assert str(problem.error()).startswith(
        "time_min=10 (from call): partition 'short' allows at most 5 minutes (MaxTime=00:05:00)"
    )


def test_validate_memory_and_cpus_against_the_largest_node() -> None:
    """Memory above the largest node's RealMemory and cpus above its CPUs are refused."""
    problems = validate(_spec(mem="64G", cpus=8), INFO)
    assert [p.field for p in problems] == ["mem_gb", "cpus_per_task"]
    assert "has 19284 MB of memory" in problems[0].accepted
    assert "default partition 'debug' has 2 CPUs" in problems[1].accepted


def test_validate_uses_the_nodes_of_the_partition() -> None:
    """Node limits are per partition: the largest node of that partition counts."""
    info = ClusterInfo(
        (Partition("compute", None, "UNLIMITED", True), Partition("gpu", 60, "01:00:00")),
        parse_nodes(SCONTROL_NODES_ONELINE),
    )
    assert validate(_spec(partition="compute", cpus=64, mem="400G"), info) == ()
    assert [p.field for p in validate(_spec(partition="gpu", cpus=32), info)] == ["cpus_per_task"]


@given(st.integers(0, 10_000), st.integers(1, 64), st.one_of(st.none(), st.integers(1, 500)))
def test_choose_parallelism_is_at_least_one_and_never_above_the_cap(idle, cpus, cap) -> None:
    """The capacity-aware throttle is >= 1, fits the idle cores (when any), and respects the cap."""
    n = choose_parallelism(idle, cpus, cap)
    assert n >= 1
    assert cap is None or n <= cap
    assert n * cpus <= idle or n == 1


def fake_runner(calls: list) -> object:
    """A runner answering scontrol and sinfo with the captured text."""

    def run(cmd):
        calls.append(tuple(cmd))
        if cmd[:2] == ["scontrol", "-o"]:
            return SCONTROL_PARTITIONS if cmd[-1] == "partition" else SCONTROL_NODE
        return "short|0/2/0/2\n"

    return run


def test_cache_asks_scontrol_once_and_sinfo_every_time() -> None:
    """Partitions and nodes are cached in the explicit cache; idle cores are not."""
    calls: list = []
    cache = ClusterQueries(fake_runner(calls))
    assert cache.info() is cache.info()
    assert cache.idle_cpus("short") == cache.idle_cpus("short") == 2
    assert [c[0] for c in calls] == ["scontrol", "scontrol", "sinfo", "sinfo"]
    cache.clear()
    cache.info()
    assert len(calls) == 6


def test_cache_expires() -> None:
    """An answer about partitions and nodes is trusted for ttl_s seconds, then asked again."""
    calls: list = []
    clock = FakeClock()
    cache = ClusterQueries(fake_runner(calls), clock=clock.now, ttl_s=60)
    first = cache.info()
    clock.advance(60)
    assert cache.info() is first
    clock.advance(1)
    assert cache.info() is not first
    assert len(calls) == 4


def _backend(runner: object, environ: dict | None = None) -> SlurmBackend:
    return pc.Session(runner=runner, environ=environ or {}).backend("slurm")


def test_check_raises_and_can_be_turned_off() -> None:
    """check raises the first problem; validate=False or PARACORE_VALIDATE=0 skip it."""
    backend = _backend(fake_runner([]))
    bad = _spec(partition="short", time=10)
    with pytest.raises(pc.SpecError, match="allows at most 5 minutes"):
        backend.check(bad, origins=None, validate=None)
    assert backend.check(bad, origins=None, validate=False) is bad
    quiet = _backend(fake_runner([]), {"PARACORE_VALIDATE": "0"})
    assert quiet.check(bad, origins=None, validate=None) is bad


def test_check_skips_when_slurm_does_not_answer() -> None:
    """Without a reachable Slurm, nothing can be checked and nothing is refused."""

    def down(cmd):
        raise SchedulerUnreachable("sinfo: not found")

    bad = _spec(partition="nope")
    assert _backend(down).check(bad, origins=None, validate=None) is bad


def test_auto_parallelism_takes_idle_cores_capped() -> None:
    """array_parallelism='auto' becomes the idle cores, never above max_array_parallelism."""
    backend = _backend(fake_runner([]))
    spec = _spec(partition="short", time=5, array_parallelism="auto")
    assert backend.check(spec, origins=None, validate=None).resources.array_parallelism == 2
    capped = _spec(partition="short", time=5, array_parallelism="auto", max_array_parallelism=1)
    assert backend.check(capped, origins=None, validate=None).resources.array_parallelism == 1


def test_auto_parallelism_off_slurm_is_dropped() -> None:
    """Other backends do not throttle: 'auto' is dropped without asking Slurm."""
    spec = _spec(array_parallelism="auto")
    local = pc.Session().backend("local")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert local.check(spec, origins=None, validate=None).resources.array_parallelism is None
    assert "--array=0-2" in pc.preview(spec, array_size=3)  # preview works with "auto"


def test_backend_limits_are_the_partitions_largest_node() -> None:
    """limits() gives MaxTime and the largest node; an unknown partition is a SpecError."""
    backend = _backend(fake_runner([]))
    assert backend.limits("short") == PartitionLimits(
        name="short", max_time_min=5, node_mem_mb=19284, node_cpus=2, total_cpus=2
    )
    assert backend.limits(None).name == "debug"
    with pytest.raises(pc.SpecError, match="a partition of this cluster: debug, short"):
        backend.limits("gpu")


def test_max_array_size_is_read_from_scontrol_show_config_once() -> None:
    from paracore.backends.slurm.cluster_queries import parse_max_array_size

    config = (
        "Configuration data as of 2026-01-01\nMaxArraySize            = 4001\nMaxJobCount = 10\n"
    )
    assert parse_max_array_size(config) == 4001
    assert parse_max_array_size("MaxJobCount = 10\n") is None
    calls: list = []

    def run(cmd):
        calls.append(tuple(cmd))
        return config

    cache = ClusterQueries(run)
    assert cache.max_array_size() == cache.max_array_size() == 4001
    assert calls == [("scontrol", "show", "config")]


def test_an_unanswered_max_array_size_falls_back_to_slurms_default() -> None:
    from paracore.shell.submit import MAX_ARRAY_SIZE, array_limit

    def broken(cmd):
        raise OSError("scontrol: not found")

    class Backend:
        def __init__(self, runner) -> None:
            self.cluster = ClusterQueries(runner)

        def max_array_size(self):
            return self.cluster.max_array_size()

    assert array_limit(Backend(broken)) == MAX_ARRAY_SIZE
    assert array_limit(Backend(lambda cmd: "MaxArraySize = 77\n")) == 77
    assert array_limit(object()) == MAX_ARRAY_SIZE  # a backend that does not say
