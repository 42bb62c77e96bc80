"""The spec-file commands: ``run``, ``preview`` and ``validate``.

``paracore run FILE`` submits what the file describes and prints the run and job ids
(``--wait`` waits with a progress bar and exits 1 if anything failed; ``--dry-run`` checks
everything and prints the scripts, submitting nothing). ``paracore preview FILE`` prints the
exact batch script(s); ``paracore validate FILE`` checks the file against the schema and the
live cluster without submitting.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import attrs

from paracore.cli.runs_commands import positive_seconds
from paracore.core.options import SubmitOptions
from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.spec import Command, JobSpec
from paracore.errors import JobFailedError, StepFailedError
from paracore.shell.checks import prepare_task
from paracore.shell.handle import SubmitHandle, gather
from paracore.shell.maps import chunk_size_of, submit_items
from paracore.shell.session import current_session
from paracore.shell.submit import array_limit, prepared, preview, submit
from paracore.specfile import SpecFile, load_spec_file
from paracore.workflow import PlanRun

__all__ = ["add_file_commands"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the spec file (YAML)")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value of the file, e.g. --set resources.partition=debug (repeatable)",
    )
    parser.add_argument("--cluster", metavar="NAME", help="the cluster profile to use")
    parser.add_argument(
        "--backend", metavar="NAME", help="where to run: slurm, local, inprocess, or a plugin's"
    )


def add_file_commands(commands: Any) -> None:
    """Add ``run``, ``preview`` and ``validate`` to the ``paracore`` command."""
    run = commands.add_parser(
        "run",
        help="submit the job, map or workflow a spec file describes",
        description="Submit the job, map or workflow FILE describes; print the run id and "
        "job ids. Exit status: 0 submitted (or, with --wait, all succeeded), 1 something "
        "failed, 2 bad input, 3 the scheduler did not answer.",
    )
    _common(run)
    run.add_argument("--wait", action="store_true", help="wait for the results (progress bar)")
    run.add_argument(
        "--timeout", type=positive_seconds, metavar="SECONDS", help="how long --wait waits at most"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check everything and print the scripts; submit nothing",
    )
    run.set_defaults(handler=_run)
    shown = commands.add_parser(
        "preview",
        help="print the exact batch script(s) a spec file would submit",
        description="Print the exact sbatch script(s) FILE would submit (one per job, map or "
        "step). Nothing is submitted; the cluster is not asked.",
    )
    _common(shown)
    shown.add_argument(
        "--token", metavar="TOKEN", help="show the script of the submission that carried TOKEN"
    )
    shown.set_defaults(handler=_preview)
    check = commands.add_parser(
        "validate",
        help="check a spec file against the schema and the live cluster",
        description="Check FILE against the schema, then every job against the live cluster "
        "(partition, walltime, memory, cpus), that functions import and pickle and that "
        "programs are on PATH. Nothing is submitted.",
    )
    _common(check)
    check.set_defaults(handler=_validate)


def _load(args: argparse.Namespace) -> SpecFile:
    return load_spec_file(args.file, sets=args.sets)


def _backend_name(args: argparse.Namespace, spec_file: SpecFile) -> str | None:
    return args.backend or spec_file.data.get("backend")


# ---------------------------------------------------------------- what gets submitted


def _job(args: argparse.Namespace, spec_file: SpecFile) -> tuple[JobSpec, SubmitOptions, list[Any]]:
    """A job or map file's spec and its submission's options, and a map's items (read once:
    an items file or a glob is not read twice)."""
    items = spec_file.items(spec_file.data) if spec_file.kind == "map" else []
    backend = _backend_name(args, spec_file)
    raw, options = spec_file.job_spec(cluster=args.cluster, backend=backend, items=items or None)
    return raw, options, items


def _tasks(spec_file: SpecFile, spec: Any, backend: Any, count: int) -> int:
    """How many array tasks a map of ``count`` items becomes (as submit_items decides)."""
    size = chunk_size_of(
        spec_file.data.get("chunk_size", "auto"),
        resolve_spec(spec),
        backend,
        count,
        max_array_size=array_limit(backend),
        pilot=None,
    )
    return math.ceil(count / size) if backend.keeps_files else count


def _scripts(
    args: argparse.Namespace, spec_file: SpecFile, validate: bool | None
) -> list[tuple[str, str]]:
    """``(title, script)`` per job, map or step, each spec checked for its backend."""
    backend_name = _backend_name(args, spec_file)
    token = getattr(args, "token", None)
    out = []
    if spec_file.kind == "workflow":
        plan = spec_file.plan(cluster=args.cluster)
        checked = plan.checked(backend=backend_name, validate=validate)
        for step in plan.steps:
            spec, step_backend = checked[step.name]
            size = step.tasks if step.tasks > 1 else None
            if validate:
                _test_submission(step_backend, spec, size)
            title = f"step {step.name}" + (f" ({step.tasks} tasks)" if size else "")
            out.append((title, preview(spec, array_size=size, token=token)))
        return out
    raw, options, items = _job(args, spec_file)
    if validate is not None:
        options = attrs.evolve(options, validate=validate)
    spec, backend = prepared(raw, options)
    if spec_file.kind == "map":
        count = len(items)
        tasks = _tasks(spec_file, raw, backend, count)
        size = tasks if tasks > 1 else None
        if validate:
            _test_submission(backend, spec, size)
        title = f"map {spec_file.name} ({count} items in {tasks} tasks)"
        return [(title, preview(spec, array_size=size, token=token))]
    if validate:
        _test_submission(backend, spec, None)
    return [(f"job {spec_file.name}", preview(spec, token=token))]


def _test_submission(backend: Any, spec: ResolvedSpec, array_size: int | None) -> None:
    """The scheduler's own word on the exact script, where the backend can give it (Slurm:
    ``sbatch --test-only``): what the live limits do not show, such as ``--nodes``."""
    test = getattr(backend, "test_submission", None)
    if callable(test):
        test(spec, array_size=array_size)


def _print_scripts(scripts: Sequence[tuple[str, str]], out: TextIO, titled: bool) -> None:
    for title, script in scripts:
        if titled:
            print(f"### {title}", file=out)
        print(script, end="" if script.endswith("\n") else "\n", file=out)


# ---------------------------------------------------------------- commands


def _preview(args: argparse.Namespace, out: TextIO) -> int:
    spec_file = _load(args)
    scripts = _scripts(args, spec_file, validate=False)
    _print_scripts(scripts, out, titled=len(scripts) > 1)
    return 0


def _answers(backend: Any) -> None:
    """Make sure a scheduler that can be asked about its cluster answers (else the checks
    against the live cluster would be skipped): raises SchedulerUnreachable."""
    queries = getattr(backend, "cluster", None)
    if queries is not None and callable(getattr(queries, "info", None)):
        queries.info()


def _validate(args: argparse.Namespace, out: TextIO) -> int:
    spec_file = _load(args)
    which = current_session().which
    if spec_file.kind == "workflow":
        plan = spec_file.plan(cluster=args.cluster)
        checked = plan.checked(backend=_backend_name(args, spec_file), validate=True)
        for step in plan.steps:
            spec, backend = checked[step.name]
            _answers(backend)
            prepare_task(spec, which)
            _test_submission(backend, spec, step.tasks if step.tasks > 1 else None)
        what = f"a workflow of {len(plan.steps)} steps"
    else:
        raw, options, items = _job(args, spec_file)
        _answers(current_session().backend_for(resolve_spec(raw)))
        spec, backend = prepared(raw, attrs.evolve(options, validate=True))
        _test_submission(backend, spec, None)
        if spec_file.kind == "map":
            section = spec_file.data
            if "command" in section:
                for cmd in spec_file.commands(section, items):
                    prepare_task(spec.with_payload(Command(cmd)), which)
            else:
                prepare_task(spec, which)
            what = f"a map of {len(items)} items"
        else:
            prepare_task(spec, which)
            what = "one job"
    print(f"{spec_file.path}: ok, {what}; nothing submitted", file=out)
    return 0


def _ids(handles: Sequence[Any]) -> tuple[list[str], list[str]]:
    """The run ids and job ids behind some handles (item handles: their chunks')."""
    runs: dict[str, None] = {}
    jobs: dict[str, None] = {}
    for handle in handles:
        own = getattr(handle, "chunk", handle)
        ledger = getattr(own, "ledger", None)
        if ledger is not None:
            runs[ledger.run_id] = None
        jobs[own.job_id] = None
    return list(runs), list(jobs)


def _job_text(jobs: Sequence[str]) -> str:
    return ", ".join(jobs) if len(jobs) <= 6 else f"{jobs[0]} .. {jobs[-1]} ({len(jobs)} jobs)"


def _run(args: argparse.Namespace, out: TextIO) -> int:
    spec_file = _load(args)
    if args.dry_run:
        scripts = _scripts(args, spec_file, validate=True)
        _print_scripts(scripts, out, titled=True)
        print(f"{spec_file.path}: dry run, nothing submitted", file=out)
        return 0
    timeout = args.timeout or spec_file.data.get("wait_timeout_s")
    if spec_file.kind == "workflow":
        return _run_plan(args, spec_file, out, timeout)
    raw, options, items = _job(args, spec_file)
    if spec_file.kind == "job":
        handle = submit(raw, options=options)
        runs, jobs = _ids([handle])
        print(f"{spec_file.name}: run {', '.join(runs) or '-'}, job {_job_text(jobs)}", file=out)
        if not args.wait:
            return 0
        try:
            with _left_running(spec_file.name, runs):
                value = handle.result(timeout)
        except JobFailedError as error:
            print(f"{spec_file.name}: failed: {error}", file=out)
            return 1
        print(f"{spec_file.name}: succeeded: {_short(value)}", file=out)
        return 0
    section = spec_file.data
    size = section.get("chunk_size", "auto")
    if "command" in section:
        commands = spec_file.commands(section, items)
        handles = submit_items(raw, commands, chunk_size=size, options=options)
    else:
        mapped = spec_file.mapped(section)
        handles = submit_items(raw, items, fn=mapped, chunk_size=size, options=options)
    runs, jobs = _ids(handles)
    print(
        f"{spec_file.name}: run {', '.join(runs) or '-'}, {len(items)} items, "
        f"job {_job_text(jobs)}",
        file=out,
    )
    if not args.wait:
        return 0
    with _left_running(spec_file.name, runs):
        outcomes = gather(handles, timeout=timeout, return_exceptions=True)
    failed = [i for i, o in enumerate(outcomes) if isinstance(o, JobFailedError)]
    print(f"{spec_file.name}: {len(items) - len(failed)} succeeded, {len(failed)} failed", file=out)
    for i in failed[:10]:
        print(f"  item {i}: {str(outcomes[i]).splitlines()[0]}", file=out)
    return 1 if failed else 0


def _run_plan(
    args: argparse.Namespace, spec_file: SpecFile, out: TextIO, timeout: float | None
) -> int:
    plan = spec_file.plan(cluster=args.cluster)
    resume = spec_file.data.get("resume")
    run: PlanRun = plan.submit(backend=_backend_name(args, spec_file), resume=resume)
    print(f"{plan.name}: plan {run.plan_id}", file=out)
    for name in plan.graph.order:
        handles = run.submitted(name)
        runs, jobs = _ids(handles)
        state = run.how[name]
        print(f"  {name}: {state}, run {', '.join(runs) or '-'}, job {_job_text(jobs) or '-'}",
              file=out)  # fmt: skip
    if not args.wait:
        return 0
    try:
        with _left_running(plan.name, [f"plan {run.plan_id}"]):
            run.wait(timeout)
    except StepFailedError as error:
        print(f"{plan.name}: {error}", file=out)
        print(run.status(), file=out)
        return 1
    print(run.status(), file=out)
    return 0


@contextlib.contextmanager
def _left_running(name: str, runs: Sequence[str]) -> Iterator[None]:
    """Ctrl-C stops waiting, not the work: say in one line what still runs and how to cancel
    it; the command then ends with exit status 130 instead of a traceback."""
    try:
        yield
    except KeyboardInterrupt:
        what = ", ".join(f"run {r}" if " " not in r else r for r in runs) or "its jobs"
        cancel = (
            f"`paracore cancel {runs[0]}`"
            if len(runs) == 1 and " " not in runs[0]
            else ("`paracore cancel RUN`")
        )
        print(
            f"paracore: interrupted: {name} ({what}) goes on running; "
            f"{cancel} cancels it, `paracore status` follows it",
            file=sys.stderr,
        )
        raise KeyboardInterrupt("announced") from None


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, SubmitHandle) else value.job_id
    stdout = getattr(value, "stdout", None)
    if isinstance(stdout, str):
        text = f"exit {value.returncode}; stdout: {stdout.strip()[:200]!r}"
    return text if len(text) <= 300 else text[:297] + "..."
