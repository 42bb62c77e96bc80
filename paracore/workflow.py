"""Workflows: a :class:`Plan` of steps, chains and parallel groups, as planit writes them.

``plan.describe()`` prints the tree with each step's walltime and resources, the critical
path, the best-case total and the requested core- and GPU-hours; ``plan.submit()`` checks
every step, then submits them in topological order with ``afterok`` dependencies and
returns a :class:`~paracore.shell.plan_run.PlanRun`. Each step's resources go through the same
layers as the convenience API's keywords (call, preset, configuration files, built-in
defaults), so a profile's defaults show in ``describe`` and reach the scheduler.

A :class:`Plan` is a value and reads no file itself: :func:`resolve_plan` reads the
configuration for its steps, and the Plan's methods take that reading as ``resolved=``
(calling :func:`resolve_plan` only when it is not given).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import IO, Any, TypeAlias

import attrs

from paracore.api import Keywords, build_spec
from paracore.backends.base import Backend
from paracore.core.config import did_you_mean
from paracore.core.keys import FLAT_ALIASES
from paracore.core.options import SubmitOptions
from paracore.core.plan_graph import (
    CallWork,
    Chain,
    CommandWork,
    Cost,
    Graph,
    MapWork,
    Node,
    Parallel,
    Result,
    Step,
    critical_path,
    format_minutes,
    graph_of,
    total_cost,
    tree_lines,
)
from paracore.core.resolved import ResolvedSpec, resolve_spec
from paracore.core.sentinel import NOT_GIVEN
from paracore.core.spec import Call, Command, JobSpec, Payload
from paracore.core.transforms import with_backend, with_config, with_log_dir, with_name, with_tags
from paracore.errors import KeywordError, PlanError
from paracore.shell.config_files import resolve, settle_options
from paracore.shell.plan_run import PlanRun, prepare_steps, submit_plan
from paracore.shell.submit import prepared

__all__ = [
    "Chain",
    "Parallel",
    "Plan",
    "PlanDescription",
    "PlanRun",
    "ResolvedStep",
    "Result",
    "Step",
    "resolve_plan",
]

_ALIASES: dict[str, str] = {
    **FLAT_ALIASES,  # time, cpus, mem
    "gpus_per_node": "gpus",
    "name": "job_name",
    "additional_params": "extra",
    # submitit's parameter names, as in planit's raw dicts
    "slurm_time": "time_min",
    "timeout_min": "time_min",
    "slurm_partition": "partition",
    "slurm_account": "account",
    "slurm_qos": "qos",
    "slurm_mem": "mem_gb",
    "slurm_job_name": "job_name",
    "slurm_array_parallelism": "array_parallelism",
    "slurm_additional_parameters": "extra",
}
_SBATCH_OPTIONS: dict[str, str] = {
    "mail_type": "mail-type",
    "mail_user": "mail-user",
    "nodes": "nodes",
    "cpus_per_gpu": "cpus-per-gpu",
    "slurm_constraint": "constraint",
    "slurm_exclude": "exclude",
}
"""planit's SlurmArgs fields (and submitit names) that are plain sbatch options: they go to
``extra``, and so into the batch script."""


def _option_value(value: Any) -> Any:
    """An sbatch option's value: planit's list of MailType members becomes ``BEGIN,END``."""
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(getattr(v, "name", v)).upper() for v in value)
    return getattr(value, "name", value) if not isinstance(value, str | int | float) else value


_PLAN_LEVEL = ("backend", "resume")
STEP_KEYWORDS = tuple(
    sorted(
        (
            *(k for k in attrs.fields_dict(Keywords) if k not in _PLAN_LEVEL),
            *_ALIASES,
            *_SBATCH_OPTIONS,
        )
    )
)
"""The keywords a step's resources mapping takes (the seed API's, and planit's spellings)."""


def step_keywords(step: str, resources: Any) -> Keywords:
    """The convenience API's keywords for a step's resources: a mapping (or its pairs), a
    preset or its name, or None."""
    if resources is None:
        return Keywords()
    if isinstance(resources, str) or callable(resources):
        return Keywords(preset=resources)
    given: dict[str, Any] = {}
    pairs: Iterable[tuple[str, Any]] = (
        resources.items() if isinstance(resources, Mapping) else resources
    )
    options: dict[str, Any] = {}
    for key, value in pairs:
        if key in _SBATCH_OPTIONS:
            if value not in (None, [], (), 1 if key == "nodes" else None):
                options[_SBATCH_OPTIONS[key]] = _option_value(value)
            continue
        if key == "gpus_per_node" and value == 0:
            continue  # planit's default: no GPU
        if key == "slurm_mem" and isinstance(value, str) and not value[-1:].isalpha():
            value = f"{value}M"  # sbatch's --mem without a unit is megabytes
        field = _ALIASES.get(key, key)
        if key not in STEP_KEYWORDS:
            guess = did_you_mean(key, list(STEP_KEYWORDS))
            hint = f"did you mean {guess!r}? " if guess else ""
            where = "given to the whole plan: plan.submit(...)" if key in _PLAN_LEVEL else ""
            raise KeywordError(
                f"resources[{key!r}]",
                value,
                f"not a resource keyword of step {step!r}; {hint}{where or 'keywords: '}"
                + ("" if where else ", ".join(STEP_KEYWORDS)),
            )
        if field == "extra" and isinstance(value, Mapping):
            options.update({str(k).replace("_", "-"): v for k, v in value.items()})
            continue
        given[field] = value
    if options:
        given["extra"] = options
    return Keywords(**given)


def _placeholder(work: CallWork | CommandWork | MapWork) -> Payload:
    """A payload standing for the step while its spec is resolved (replaced at submission)."""
    if isinstance(work, CommandWork):
        return Command(work.cmd)
    if isinstance(work, MapWork):
        if work.fn is None:
            return Command(str(work.items[0]))
        return Call(work.fn, (work.items[0], *work.args), work.kwargs)
    return Call(work.fn, work.args, work.kwargs)


def step_spec(plan: str, step: Step) -> tuple[JobSpec, SubmitOptions]:
    """The step's spec through the configuration layers, named ``<plan>.<step>`` unless its
    resources name it, tagged with both; and its submission's options."""
    payload = _placeholder(step.work)
    if isinstance(step.resources, JobSpec):
        base = step.resources
        resolved = resolve(base.cluster if isinstance(base.cluster, str) else None)
        spec = with_config(
            resolved.spec_config(), base.with_payload(payload), source="configuration files"
        )
        options = settle_options(origins=resolved.sources(), config=resolved)
    else:
        spec, options = build_spec(payload, step_keywords(step.name, step.resources))
    if spec.naming.job_name is NOT_GIVEN:
        spec = with_name(f"{plan}.{step.name}", spec)
    return with_tags({"plan": plan, "step": step.name}, spec), options


@attrs.frozen
class ResolvedStep:
    """A step's spec through the configuration layers (no backend chosen yet) and its
    submission's options (where its values came from, whether to check it)."""

    spec: JobSpec
    options: SubmitOptions = attrs.field(factory=SubmitOptions, eq=False)


Resolved: TypeAlias = Mapping[str, ResolvedStep]


def _on(backend: str | None, spec: JobSpec) -> JobSpec:
    return spec if backend is None else with_backend(backend, spec)


@attrs.frozen
class PlanDescription:
    """What :meth:`Plan.describe` found: the tree as text, the critical path and its length
    (minutes), and the requested hours in all and on the critical path."""

    text: str
    critical_path: tuple[str, ...]
    total_minutes: float
    cost: Cost
    critical_cost: Cost
    minutes: Mapping[str, float] = attrs.field(eq=False)

    def __str__(self) -> str:
        return self.text


def _notes(spec: ResolvedSpec, step: Step) -> str:
    res = spec.resources
    parts = [f"{res.cpus_per_task} cpu" + ("s" if res.cpus_per_task != 1 else "")]
    gpus = res.gpus or 0
    if gpus:
        parts.append(f"{gpus} gpu" + ("s" if gpus != 1 else ""))
    if res.mem_mb is not None:
        mem = res.mem_mb / 1024
        parts.append(f"{mem:g}G" if mem >= 1 else f"{res.mem_mb}M")
    if res.partition is not None:
        parts.append(res.partition)
    if step.kind == "map":
        parts.append(f"{step.tasks} tasks")
    return ", ".join(parts)


def _hours(cost: Cost) -> str:
    return f"{cost.core_hours:.1f} core-hours, {cost.gpu_hours:.1f} GPU-hours"


@attrs.frozen
class Plan:
    """A named workflow: ``Plan("experiment", Chain(Step(...), Parallel(...), ...))``.

    Plans are values: building one checks it (unique step names, known names in ``after``
    and Result, no cycle, no empty group), and describing or submitting never changes it.
    A plan reads no configuration file itself: :func:`resolve_plan` does, and ``specs``,
    ``describe`` and ``checked`` take its reading as ``resolved=`` (read then if not given).
    """

    name: str
    node: Node
    graph: Graph = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "graph", graph_of(self.name, self.node))

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps in the order they are written."""
        return self.graph.steps

    def specs(
        self, *, backend: str | None = None, resolved: Resolved | None = None
    ) -> dict[str, ResolvedSpec]:
        """Each step's spec as it will be submitted (configuration files and built-in
        defaults applied), by step name; ``resolved`` is :func:`resolve_plan`'s reading."""
        resolved = resolve_plan(self) if resolved is None else resolved
        return {s.name: resolve_spec(_on(backend, resolved[s.name].spec)) for s in self.graph.steps}

    def describe(
        self,
        *,
        file: IO[str] | None = None,
        show: bool = True,
        resolved: Resolved | None = None,
    ) -> PlanDescription:
        """Print the plan as a tree (planit's layout) with each step's walltime and
        resources, the critical path (``*``), the best-case total (queueing not counted) and
        the requested core- and GPU-hours, in all and on the critical path; return them.
        ``resolved`` is :func:`resolve_plan`'s reading of the configuration."""
        specs = self.specs(resolved=resolved)
        minutes = {n: float(s.resources.time_min or 0) for n, s in specs.items()}
        costs = {
            s.name: Cost.of(
                s.tasks,
                minutes[s.name],
                int(specs[s.name].resources.cpus_per_task),  # type: ignore[arg-type]
                g if isinstance(g := specs[s.name].resources.gpus, int) else 0,
            )
            for s in self.graph.steps
        }
        total, path = critical_path(self.graph, minutes)
        notes = {s.name: _notes(specs[s.name], s) for s in self.graph.steps}
        lines = tree_lines(self.node, minutes, notes, path)
        cost, on_path = total_cost(costs, costs), total_cost(costs, path)
        footer = [
            f"Critical path (*): {' -> '.join(path)}",
            f"Time Estimate (not taking queuing into account): {format_minutes(total)}",
            f"Requested: {_hours(cost)}; on the critical path: {_hours(on_path)}",
        ]
        text = "\n".join([f"Plan: {self.name}", *(line for line, _ in lines), *footer])
        if show:
            _print(self.name, lines, footer, file)
        return PlanDescription(
            text=text,
            critical_path=path,
            total_minutes=total,
            cost=cost,
            critical_cost=on_path,
            minutes=minutes,
        )

    def checked(
        self,
        *,
        backend: str | None = None,
        validate: bool | None = None,
        resolved: Resolved | None = None,
    ) -> dict[str, tuple[ResolvedSpec, Backend]]:
        """Each step's spec checked for its backend (against the live cluster unless
        ``validate`` is False, or the configuration says so when it is None), by step name;
        nothing is submitted. The first bad value in any step raises. ``resolved`` is
        :func:`resolve_plan`'s reading of the configuration."""
        resolved = resolve_plan(self) if resolved is None else resolved
        checked = {}
        for step in self.graph.steps:
            got = resolved[step.name]
            options = (
                got.options if validate is None else attrs.evolve(got.options, validate=validate)
            )
            checked[step.name] = prepared(_on(backend, got.spec), options)
        return checked

    def submit(
        self,
        executor: Any = None,
        /,
        *,
        backend: str | None = None,
        resume: str | None = None,
        validate: bool | None = None,
    ) -> PlanRun:
        """Check every step, then submit them in topological order with ``afterok``
        dependencies (``--kill-on-invalid-dep=yes``), and return the run.

        Submitting the same plan again (by name, on the same backend) re-uses the steps
        that completed, re-attaches to those still in flight and submits the failed,
        cancelled and changed ones with everything downstream; ``resume="never"`` submits
        everything anew (default: the ``resume`` setting of the configuration).
        ``backend="local"`` (or ``inprocess``) runs the plan on this machine, parallel
        branches at once. As in planit, a submitit executor may be given instead: its
        ``folder`` holds the logs, and its cluster chooses the backend (``"debug"`` runs the
        plan in this process, like ``backend="inprocess"``).
        """
        mode = settle_options(resume=resume).resume
        resolved = None
        if executor is not None:
            backend, log_dir = _from_executor(executor, backend)
            resolved = {
                name: attrs.evolve(step, spec=with_log_dir(log_dir, step.spec))
                for name, step in resolve_plan(self).items()
            }
        checked = self.checked(backend=backend, validate=validate, resolved=resolved)
        backends = {b.name for _s, b in checked.values()}
        if len(backends) > 1:
            raise PlanError(
                f"plan {self.name!r}: its steps ask for different backends "
                f"({', '.join(sorted(backends))}); give one: plan.submit(backend=...)"
            )
        work = prepare_steps(self.graph, checked)
        first = next(iter(checked.values()))[1]
        return submit_plan(self.graph, work, backend=first, resume=mode)


_EXECUTOR_BACKENDS = {"slurm": "slurm", "local": "local", "debug": "inprocess"}


def _from_executor(executor: Any, backend: str | None) -> tuple[str, str]:
    """The backend and log folder a submitit executor stands for (planit's ``submit``)."""
    cluster = getattr(executor, "cluster", None)
    folder = getattr(executor, "folder", None)
    if cluster not in _EXECUTOR_BACKENDS or folder is None:
        raise PlanError(
            f"plan.submit({executor!r}): expected a submitit AutoExecutor (cluster 'slurm', "
            "'local' or 'debug', with a folder), or keywords: plan.submit(backend=...)"
        )
    if backend is not None:
        raise PlanError("plan.submit: give an executor or backend=, not both")
    return _EXECUTOR_BACKENDS[cluster], str(folder)


def resolve_plan(plan: Plan) -> dict[str, ResolvedStep]:
    """Each step's spec through the configuration layers (call keywords, preset, the
    configuration files), by step name: where a plan's configuration is read.

    :class:`Plan` stays a value that reads nothing itself: its methods take this reading as
    ``resolved=`` and call this function only when none is given (so ``plan.describe()``
    just works). Pass one reading to several of them to read the files once. The reading is
    here, beside the keywords it translates as the convenience API does, not in the shell,
    which never imports the API.
    """
    out = {}
    for step in plan.graph.steps:
        spec, options = step_spec(plan.name, step)
        out[step.name] = ResolvedStep(spec, options)
    return out


def _print(
    name: str, lines: list[tuple[str, bool]], footer: list[str], file: IO[str] | None
) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(file=file or sys.stdout, highlight=False, soft_wrap=True)
    console.print(Text(f"Plan: {name}", style="bold"))
    for line, critical in lines:
        console.print(Text(line, style="bold red" if critical else ""))
    for line in footer:
        console.print(Text(line))
