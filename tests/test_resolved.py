"""ResolvedSpec: resolved once per submission, no field left unset; and the parts of a run's
submission (claim or attach, submit every part or none, the ledger), each on its own."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given

import paracore as pc
import paracore.core.resolved as resolved_module
from paracore.core.escalation import AttemptResources
from paracore.core.names import ALLOWED_PATTERN
from paracore.core.options import SubmitOptions
from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.sentinel import NOT_GIVEN
from paracore.runtime.tasks import CommandTask
from paracore.shell.submit import RunRequest, claim_or_attach, make_ledger, submit_parts
from paracore.testing import FakeJob
from tests.strategies import job_specs

_IDS = itertools.count(1)


class FakeBackend:
    """A backend that keeps files (so runs are recorded) and answers at once."""

    name = "fake"
    schedules_dependencies = True
    measures_in_task = False
    keeps_files = True

    def __init__(self, fail_on_submission: int | None = None) -> None:
        self.fail_on_submission = fail_on_submission
        self.submitted: list[ResolvedSpec] = []
        self.cancelled: list[str] = []

    def check(
        self, spec: ResolvedSpec, *, origins: Mapping[str, str] | None, validate: bool | None
    ) -> ResolvedSpec:
        return spec

    def submit(
        self, spec: ResolvedSpec, tasks: Sequence[Any], describes: Sequence[str], *, after=()
    ) -> list[FakeJob]:
        self.submitted.append(spec)
        if self.fail_on_submission == len(self.submitted):
            raise pc.SubmissionError("sbatch refused this part")
        first = next(_IDS)
        return [
            FakeJob.succeeding(i, job_id=f"{first}_{i}", array_index=i) for i in range(len(tasks))
        ]

    def reattach(self, spec, job_id, *, array_index, record_key, describe) -> FakeJob:
        return FakeJob.succeeding(array_index, job_id=job_id, array_index=array_index)

    def accounting(self, job_ids: Sequence[str]) -> Mapping[str, Any]:
        return {}

    def cancel(self, job_ids: Sequence[str]) -> None:
        self.cancelled += list(job_ids)

    def limits(self, partition: str | None) -> None:
        return None

    def preview(self, spec, *, array_size=None, token=None) -> str:
        return ""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBackend:
    """A session whose ``fake`` backend records runs in a store under tmp_path."""
    monkeypatch.chdir(tmp_path)
    backend = FakeBackend()
    session = pc.Session(backends={"fake": backend}, environ={"HOME": str(tmp_path)})
    with pc.use_session(session):
        yield backend


def _request(backend: FakeBackend, tmp_path: Path, tasks: int = 2, size: int = 1) -> RunRequest:
    spec = resolve_spec(pc.with_log_dir(str(tmp_path / "logs"), pc.JobSpec.command("true")))
    commands = [CommandTask(f"echo {i}", record_key=f"k{i}") for i in range(tasks)]
    labels = [f"command 'echo {i}'" for i in range(tasks)]
    return RunRequest("map", spec, backend, commands, labels, size)


# ---------------------------------------------------------------- the value


@given(job_specs())
def test_a_resolved_spec_leaves_nothing_unset(spec: pc.JobSpec) -> None:
    """Every field of a resolved spec is settled (no NOT_GIVEN at any depth)."""
    resolved = resolve_spec(spec)
    assert NOT_GIVEN not in attrs.asdict(resolved, recurse=True).values()
    assert NOT_GIVEN not in attrs.asdict(resolved.resources).values()
    assert NOT_GIVEN not in attrs.asdict(resolved.env).values()


@given(job_specs())
def test_resolving_is_idempotent_and_names_are_valid(spec: pc.JobSpec) -> None:
    """A resolved spec resolves to itself; its name is a valid Slurm name and ends its log
    folder."""
    resolved = resolve_spec(spec)
    assert resolve_spec(resolved) is resolved
    assert re.fullmatch(ALLOWED_PATTERN, resolved.name)
    assert resolved.log_folder == f"{resolved.log_dir}/{resolved.name}"
    assert pc.job_name(spec) == resolved.name


@given(job_specs())
def test_an_attempt_round_trips(spec: pc.JobSpec) -> None:
    """Asking for an attempt's memory, time and excluded nodes gives back that attempt."""
    resolved = resolve_spec(spec)
    wanted = AttemptResources(
        partition=resolved.attempt.partition, mem_mb=4096, time_min=90, exclude=("n1", "n2")
    )
    assert resolved.with_attempt(wanted).attempt == wanted
    assert resolved.with_attempt(resolved.attempt).attempt == resolved.attempt


def test_one_resolution_per_submission(fake: FakeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_cmd, map_func (chunked and not) and submit resolve the spec exactly once."""
    calls: list[pc.JobSpec] = []
    real = resolved_module.with_builtin_defaults

    def counted(spec: pc.JobSpec) -> pc.JobSpec:
        calls.append(spec)
        return real(spec)

    monkeypatch.setattr(resolved_module, "with_builtin_defaults", counted)
    pc.run_cmd("true", backend="fake")
    assert len(calls) == 1
    pc.map_func(abs, [1, -2, 3], backend="fake", chunk_size=1)
    assert len(calls) == 2
    pc.map_func(abs, list(range(-5, 5)), backend="fake", chunk_size=3)
    assert len(calls) == 3
    pc.submit(pc.with_backend("fake", pc.JobSpec.command("true")), resume="never")
    assert len(calls) == 4
    assert all(isinstance(spec, ResolvedSpec) for spec in fake.submitted)


def test_the_memory_a_user_asks_for_is_what_the_backend_receives(fake: FakeBackend) -> None:
    """run_cmd(mem_gb=3) reaches the backend as 3072 MB on the one resolved spec."""
    pc.run_cmd("true", backend="fake", mem_gb=3, job_name="mem-walk")
    (spec,) = fake.submitted
    assert (spec.resources.mem_mb, spec.name) == (3072, "mem-walk")


# ---------------------------------------------------------------- the parts of a run


def test_submit_parts_submits_every_part_or_cancels_those_already_sent(
    tmp_path: Path, fake: FakeBackend
) -> None:
    """A part sbatch refuses cancels the parts submitted before it, and the error comes out."""
    fake.fail_on_submission = 2
    request = _request(fake, tmp_path, tasks=3, size=2)
    recorded: list[int] = []
    with pytest.raises(pc.SubmissionError, match="refused this part"):
        submit_parts(request, (), lambda offset, jobs: recorded.append(offset))
    assert recorded == [0]
    assert len(fake.cancelled) == 2  # the first part's two tasks


def test_submit_parts_hands_every_part_to_the_recorder(tmp_path: Path, fake: FakeBackend) -> None:
    """Parts are split by the array limit and recorded at their offsets."""
    recorded: list[tuple[int, int]] = []
    jobs = submit_parts(
        _request(fake, tmp_path, tasks=5, size=2),
        (),
        lambda offset, part: recorded.append((offset, len(part))),
    )
    assert len(jobs) == 5
    assert recorded == [(0, 2), (2, 2), (4, 1)]


def test_claim_or_attach_attaches_only_when_resume_allows(
    tmp_path: Path, fake: FakeBackend
) -> None:
    """The same request claims a new run, then re-attaches to it (auto), or claims another
    (never)."""
    store = pc.Session().store(tmp_path / "store")
    request = _request(fake, tmp_path)
    run_id = claim_or_attach(store, request, "auto")
    assert isinstance(run_id, str)
    store.submitted(run_id, [(i, {"job_id": f"9_{i}", "array_index": i}) for i in range(2)])
    attached = claim_or_attach(store, request, "auto")
    assert isinstance(attached, list) and len(attached) == 2
    fresh = claim_or_attach(store, request, "never")
    assert isinstance(fresh, str) and fresh != run_id


def test_make_ledger_follows_the_recorded_run(tmp_path: Path, fake: FakeBackend) -> None:
    """The ledger of a new run knows its id and every task's version."""
    store = pc.Session().store(tmp_path / "store")
    request = _request(fake, tmp_path)
    run_id = claim_or_attach(store, request, "never")
    assert isinstance(run_id, str)
    ledger = make_ledger(store, run_id, request)
    assert ledger.run_id == run_id


def test_start_run_with_options_records_in_the_store_they_name(
    tmp_path: Path, fake: FakeBackend
) -> None:
    """The run store is the one the options settled (no second read of the configuration)."""
    folder = tmp_path / "elsewhere"
    options = SubmitOptions(resume="never", store=str(folder))
    handle = pc.submit(pc.with_backend("fake", pc.JobSpec.command("true")), options=options)
    assert handle.result(timeout=5) == 0
    assert len(pc.Session().store(folder).runs()) == 1
