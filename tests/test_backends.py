"""The backend protocol and the session: every built-in backend speaks it; sessions swap."""

from __future__ import annotations

import pytest

import paracore as pc
from paracore.backends import BUILTIN_BACKENDS, make_backend
from paracore.backends.base import Backend
from paracore.core.resolved import resolve_spec
from paracore.shell.session import current_session
from paracore.testing import FakeClock


@pytest.mark.parametrize("name", sorted(BUILTIN_BACKENDS))
def test_every_builtin_backend_implements_the_protocol(name: str) -> None:
    """slurm, local and inprocess are Backends, named as the spec asks for them."""
    backend = pc.Session(environ={}).backend(name)
    assert isinstance(backend, Backend)
    assert backend.name == name


def test_a_session_makes_each_backend_once() -> None:
    """The Slurm backend (with its poller and cluster cache) is made once per session."""
    session = pc.Session(environ={})
    assert session.backend("slurm") is session.backend("slurm")
    assert pc.Session(environ={}).backend("slurm") is not session.backend("slurm")


def test_an_unknown_backend_is_refused() -> None:
    """A backend name nobody provides is a SpecError listing the installed ones, with the
    closest name for a typo."""
    with pytest.raises(pc.SpecError, match="installed backends: slurm, local, inprocess"):
        make_backend("k8s", pc.Session())
    with pytest.raises(pc.SpecError, match="did you mean 'slurm'"):
        make_backend("slrum", pc.Session())


@pytest.mark.parametrize("name", ["local", "inprocess"])
def test_backends_on_this_machine_have_no_throttle_and_its_size(name: str) -> None:
    """Without a scheduler 'auto' is dropped, nothing is accounted, limits are the machine's."""
    backend = pc.Session().backend(name)
    spec = resolve_spec(pc.with_resources(pc.JobSpec.command("true"), array_parallelism="auto"))
    assert backend.check(spec, origins=None, validate=None).resources.array_parallelism is None
    assert backend.accounting(["1"]) == {}
    limits = backend.limits(None)
    assert limits is not None and limits.name == name and limits.node_cpus >= 1


def test_use_session_swaps_the_world_and_restores_it() -> None:
    """Inside use_session handles take the session's clock; outside, the default is back."""
    default = current_session()
    clock = FakeClock(start=1000.0)
    session = pc.Session(clock=clock.now, sleep=clock.sleep, environ={})
    with pc.use_session(session) as inside:
        assert current_session() is inside is session
        handle = pc.submit(pc.with_backend("inprocess", pc.JobSpec.call(abs, -3)))
        assert handle.result(timeout=5) == 3
        assert pc.backend_for(pc.JobSpec.command("true")) in ("slurm", "local")
    assert current_session() is default


def test_the_session_environment_chooses_the_backend() -> None:
    """$PARACORE_BACKEND is read from the session's environment, not the process's."""
    with pc.use_session(pc.Session(environ={"PARACORE_BACKEND": "inprocess"})):
        assert pc.backend_for(pc.JobSpec.command("true")) == "inprocess"
        handle = pc.run_cmd("echo from-session")
        assert handle.result(timeout=30).stdout.strip() == "from-session"
        assert handle.job_id.startswith("inprocess-")
