"""Test wiring: Hypothesis's profiles, and the real-Slurm integration tests (docs/testing.md).

Hypothesis runs under the profile named by ``$HYPOTHESIS_PROFILE``: ``ci`` (the same examples
every run, no deadline, no health check about the machine's speed) or ``dev`` (random
examples, Hypothesis's defaults). Without the variable it is ``ci`` when ``CI=true``, else
``dev``; pytest's ``--hypothesis-profile`` overrides both.

Tests marked ``@pytest.mark.slurm`` get the session fixture ``slurm_cluster`` added
automatically. It makes sure a usable Slurm cluster answers on this machine: it uses one
that already works, otherwise (as root, with apt-get or Slurm installed) starts one with
``scripts/local-slurm up``, exactly once per test session even under pytest-xdist.
If no cluster can be had, the tests are skipped with one line saying why, except in CI
(``CI=true``) where that is a failure.

Tests where file ownership matters take the session fixture ``other_user``: a second Unix
user, ``paracore-other``, created with ``useradd --system`` when the tests run as root and it
is missing (they chown files to it, so they need root). Without it they are skipped, except
in CI, where that is a failure.

Environment:
    CI=true                     never skip slurm tests: failing to get a cluster fails them;
                                nor tests needing a second user: failing to make one fails;
                                Hypothesis's profile is ci unless HYPOTHESIS_PROFILE says
    HYPOTHESIS_PROFILE=ci|dev   the Hypothesis profile
    PARACORE_SLURM_AUTOSTART=0  do not run scripts/local-slurm up from the tests
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# CI: the same examples on every run, so a red build is reproducible and never depends on the
# draw. Deadlines and the too_slow health check time the machine, not the code: too_slow fails
# when the first 10 valid examples take over 1 s to draw (5 x the 200 ms deadline), and
# job_specs() draws them in 50-70 ms on an idle machine, so it fails only when the machine is
# 15-20 times slower, as under `pytest -n 4` on two cores shared with other jobs. A test that
# hangs is still stopped by pytest-timeout. The health checks about the strategies themselves
# (filter_too_much, data_too_large, large_base_example, ...) stay on.
settings.register_profile(
    "ci",
    derandomize=True,  # implies database=None: nothing is read from or written to .hypothesis/
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=100,  # Hypothesis's default; tests that need more or fewer say so
    print_blob=True,  # a failure prints the @reproduce_failure line
)
# Development: Hypothesis's defaults, new random examples each run, failures kept in
# .hypothesis/ and replayed first next time.
settings.register_profile("dev", settings.get_profile("default"))
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)

REPO = Path(__file__).resolve().parents[1]
LOCAL_SLURM = REPO / "scripts" / "local-slurm"
USABLE_NODE_STATES = {"idle", "mix", "mixed", "alloc", "allocated", "comp", "completing"}
UP_TIMEOUT_S = 900  # a first `up` installs packages with apt-get


@dataclass(frozen=True)
class SlurmInfo:
    """What the tests may want to know about the cluster they run against."""

    node: str
    cpus: int
    memory_mb: int
    partitions: tuple[str, ...]
    default_partition: str
    enforcement: str  # "cgroup" | "overmemorykill" | "none"
    version: str

    @property
    def oom_state(self) -> str:
        """The sacct state of a job killed for exceeding --mem, in this enforcement mode."""
        return "OUT_OF_MEMORY" if self.enforcement == "cgroup" else "FAILED"


class SlurmUnavailable(Exception):
    pass


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SlurmUnavailable(f"{cmd[0]}: {e}") from e


def _ok(cmd: list[str], timeout: float = 30) -> str:
    proc = _run(cmd, timeout)
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise SlurmUnavailable(f"{cmd[0]}: {msg[-1] if msg else f'exit {proc.returncode}'}")
    return proc.stdout


def _enforcement(config: str) -> str:
    def get(key: str) -> str:
        m = re.search(rf"^{key}\s*=\s*(.*)$", config, re.MULTILINE)
        return m.group(1).strip() if m else ""

    if "proctrack/cgroup" in get("ProctrackType") and "task/cgroup" in get("TaskPlugin"):
        return "cgroup"
    if "overmemorykill" in get("JobAcctGatherParams").lower():
        return "overmemorykill"
    return "none"


def probe_slurm(timeout: float = 30) -> SlurmInfo:
    """Describe the cluster if it is usable (a node idle/mix/alloc, accounting answers);
    raise SlurmUnavailable with the reason otherwise."""
    if shutil.which("sinfo") is None:
        raise SlurmUnavailable("Slurm is not installed (no sinfo)")
    if _local_slurm_conf() and _run(["pgrep", "-x", "slurmctld"], 10).returncode != 0:
        # our own cluster, not running: do not wait ~10 s for sinfo to give up
        raise SlurmUnavailable("the scripts/local-slurm cluster is not running")
    nodes = [
        line.split("|")
        for line in _ok(["sinfo", "-h", "-N", "-o", "%N|%t"], timeout).splitlines()
        if line.strip()
    ]
    usable = [name for name, state in nodes if state in USABLE_NODE_STATES]
    if not usable:
        states = ", ".join(f"{n}={s}" for n, s in nodes) or "no nodes"
        raise SlurmUnavailable(f"no usable Slurm node ({states})")
    node = usable[0]
    node_line = _ok(["scontrol", "-o", "show", "node", node], timeout)
    fields = dict(kv.split("=", 1) for kv in node_line.split() if "=" in kv)
    parts = [p for p in _ok(["sinfo", "-h", "-o", "%P"], timeout).split() if p]
    default = next((p.rstrip("*") for p in parts if p.endswith("*")), parts[0].rstrip("*"))
    config = _ok(["scontrol", "show", "config"], timeout)
    version = _ok(["sinfo", "--version"], timeout).strip()
    # sacct fails with "Slurm accounting storage is disabled" without slurmdbd
    _ok(["sacct", "-n", "-X", "-S", "now-1minutes", "-o", "jobid"], timeout)
    return SlurmInfo(
        node=node,
        cpus=int(fields.get("CPUTot", "0")),
        memory_mb=int(fields.get("RealMemory", "0")),
        partitions=tuple(p.rstrip("*") for p in parts),
        default_partition=default,
        enforcement=_enforcement(config),
        version=version,
    )


def _local_slurm_conf() -> bool:
    """Is this machine's slurm.conf the one scripts/local-slurm writes?"""
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf"))
    try:
        return "managed by paracore scripts/local-slurm" in conf.read_text(errors="replace")
    except OSError:
        return False


def _can_autostart() -> str | None:
    """None if we may run scripts/local-slurm up, else why not."""
    if os.environ.get("PARACORE_SLURM_AUTOSTART", "1") == "0":
        return "PARACORE_SLURM_AUTOSTART=0"
    if os.geteuid() != 0:
        return "not root"
    if not LOCAL_SLURM.exists():
        return f"{LOCAL_SLURM} missing"
    if shutil.which("apt-get") is None and shutil.which("slurmctld") is None:
        return "neither apt-get nor slurmctld available"
    return None


def _shared_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory shared by all xdist workers of this session (and only this session)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-n:])


def _unavailable(reason: str, hint: str, detail: str = "") -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"no Slurm cluster in CI (CI=true): {reason}\n{detail}".rstrip(), pytrace=False)
    pytest.skip(f"no Slurm cluster: {reason}; {hint}")


HINT_UP = "run `sudo scripts/local-slurm up` to enable the slurm tests"


def _bring_up(shared: Path) -> SlurmInfo:
    """Use a working cluster, or start one (once for all xdist workers)."""
    try:
        return probe_slurm()
    except SlurmUnavailable as e:
        first_reason = str(e)
    why_not = _can_autostart()
    if why_not is not None:
        _unavailable(f"{first_reason} (not auto-starting: {why_not})", HINT_UP)
    failed_marker = shared / "local-slurm-up.failed"
    with open(shared / "local-slurm-up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other workers wait here, then re-check
        if failed_marker.exists():  # another worker already tried this session
            _unavailable(*_up_failed(failed_marker.read_text()))
        try:
            return probe_slurm()
        except SlurmUnavailable:
            pass
        try:
            proc = subprocess.run(
                [str(LOCAL_SLURM), "up"],
                capture_output=True,
                text=True,
                timeout=UP_TIMEOUT_S,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            output, rc = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            output, rc = f"{e.stdout or ''}{e.stderr or ''}", f"timeout after {UP_TIMEOUT_S}s"
        if rc == 0:
            try:
                return probe_slurm()
            except SlurmUnavailable as e:
                rc, output = "0 but cluster unusable", f"{output}\n{e}"
        failed_marker.write_text(_tail(str(output)))
        _unavailable(*_up_failed(_tail(str(output)), rc))
    raise AssertionError("unreachable")


def _up_failed(output: str, rc: object = None) -> tuple[str, str, str]:
    last = output.strip().splitlines()[-1] if output.strip() else "no output"
    status = f" ({rc})" if rc is not None else ""
    return (
        f"`scripts/local-slurm up` failed{status}: {last}",
        "see `scripts/local-slurm status` and its logs; PARACORE_SLURM_AUTOSTART=0 stops "
        "the tests from starting it",
        output,
    )


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> SlurmInfo:
    """A usable Slurm cluster on this machine (started by scripts/local-slurm if needed)."""
    return _bring_up(_shared_tmp(tmp_path_factory))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slurm") is not None:
            names = getattr(item, "fixturenames", None)
            if names is not None and "slurm_cluster" not in names:
                names.insert(0, "slurm_cluster")


def pytest_report_header(config: pytest.Config) -> str:
    try:
        info = probe_slurm(timeout=10)
    except SlurmUnavailable as e:
        auto = _can_autostart()
        plan = (
            "slurm tests will run `scripts/local-slurm up`"
            if auto is None
            else (
                f"slurm tests will {'fail' if os.environ.get('CI') == 'true' else 'skip'} ({auto})"
            )
        )
        return f"slurm: not usable now ({e}); {plan}"
    return (
        f"slurm: {info.version}, node {info.node} ({info.cpus} CPUs, {info.memory_mb} MB), "
        f"partitions {','.join(info.partitions)}, memory enforcement {info.enforcement}"
    )


@pytest.fixture
def slurm_workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the test's own tmp dir (logs land there) with the Slurm backend forced."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PARACORE_BACKEND", "slurm")
    return tmp_path


@pytest.fixture(autouse=True)
def run_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test records its runs in a store of its own (identical work in two tests stays two
    runs); subprocesses a test starts inherit it through $PARACORE_STORE."""
    folder = tmp_path_factory.mktemp("store")
    monkeypatch.setenv("PARACORE_STORE", str(folder))
    return folder


OTHER_USER = "paracore-other"


@dataclass(frozen=True)
class OtherUser:
    """A second Unix user, for files that belong to someone else."""

    name: str
    uid: int
    gid: int


def _other_user_missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"no second user {OTHER_USER!r} in CI (CI=true): {reason}", pytrace=False)
    pytest.skip(f"no second user {OTHER_USER!r}: {reason}")


@pytest.fixture(scope="session")
def other_user(tmp_path_factory: pytest.TempPathFactory) -> OtherUser:
    """The Unix user ``paracore-other``, created (as root, once per session even under xdist)
    with ``useradd --system --no-create-home`` when missing. Tests chown files to it, so
    they need root: otherwise they are skipped (failed in CI)."""
    if os.geteuid() != 0:
        _other_user_missing("the tests do not run as root, so they cannot chown files to it")
    with open(_shared_tmp(tmp_path_factory) / "other-user.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker creates it, the others find it
        try:
            entry = pwd.getpwnam(OTHER_USER)
        except KeyError:
            if shutil.which("useradd") is None:
                _other_user_missing("useradd is not installed")
            command = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            made = subprocess.run(
                [*command, OTHER_USER], capture_output=True, text=True, timeout=60, check=False
            )
            if made.returncode != 0:
                _other_user_missing(f"useradd failed: {(made.stderr or made.stdout).strip()}")
            entry = pwd.getpwnam(OTHER_USER)
    return OtherUser(OTHER_USER, entry.pw_uid, entry.pw_gid)


@pytest.fixture
def ctrl_c() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this test, as at a terminal, even when the suite was
    started in the background (a shell then starts it with SIGINT ignored, and Python leaves it
    so); restored afterwards."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
