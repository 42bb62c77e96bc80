"""Workflows as values: steps, chains and parallel groups, and the DAG they make (pure).

A plan is a tree of :class:`Step` leaves under :class:`Chain` (one after another, each child
waiting for the previous one with ``afterok``) and :class:`Parallel` (side by side, all after
the same parents) nodes, as in planit. :meth:`Step.with_after` adds edges the tree cannot
express, and a :class:`Result` argument makes a step wait for the step whose return value it
takes. :func:`graph_of` turns the tree into a checked :class:`Graph` (unique names, known
names, no cycle, no empty group); everything else here is arithmetic on that graph:
topological order, the critical path and the requested core- and GPU-hours.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeAlias

import attrs

from paracore.core.config import did_you_mean
from paracore.core.spec import JobSpec, kwargs_pairs
from paracore.core.units import parse_walltime
from paracore.errors import PlanError, SpecError

__all__ = [
    "CallWork",
    "Chain",
    "CommandWork",
    "Cost",
    "Graph",
    "MapWork",
    "Node",
    "Parallel",
    "Result",
    "Step",
    "critical_path",
    "descendants",
    "downstream",
    "format_minutes",
    "graph_of",
    "node_minutes",
    "results_in",
    "topological_order",
    "total_cost",
]


@attrs.frozen
class Result:
    """Stands, in a step's arguments, for the return value of the step named ``step``
    (a list, in input order, for a map step); read on the node from that step's result file."""

    step: str = attrs.field()

    @step.validator
    def _named(self, _attr: attrs.Attribute[Any], value: object) -> None:
        if not isinstance(value, str) or not value:
            raise PlanError(f"Result({value!r}): expected the name of an upstream step")


@attrs.frozen
class CallWork:
    """Call ``fn(*args, **kwargs)`` once."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = attrs.field(default=(), hash=False)
    kwargs: tuple[tuple[str, Any], ...] = attrs.field(
        default=(), converter=kwargs_pairs, hash=False
    )


@attrs.frozen
class CommandWork:
    """Run one shell command."""

    cmd: str


@attrs.frozen
class MapWork:
    """One array: ``fn(item, *args, **kwargs)`` per item, or each item as a shell command
    when ``fn`` is None."""

    fn: Callable[..., Any] | None
    items: tuple[Any, ...] = attrs.field(hash=False)
    args: tuple[Any, ...] = attrs.field(default=(), hash=False)
    kwargs: tuple[tuple[str, Any], ...] = attrs.field(
        default=(), converter=kwargs_pairs, hash=False
    )


Work: TypeAlias = CallWork | CommandWork | MapWork
Resources: TypeAlias = "Mapping[str, Any] | Callable[[JobSpec], JobSpec] | JobSpec | str | None"
"""What a step asks for: the seed API's keywords as a mapping, a transform or preset (or a
preset's name), or a JobSpec whose settings are taken (its payload is replaced)."""


WALLTIME_KEYS = ("time", "time_min", "slurm_time", "timeout_min")
"""Resource keys holding a walltime (paracore's, planit's and submitit's spellings)."""


def _resources(name: str, value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}  # SlurmArgs
    if value is None or isinstance(value, str | JobSpec) or callable(value):
        return value
    if isinstance(value, Mapping):
        for key in WALLTIME_KEYS:
            if value.get(key) is not None:
                _check_walltime(name, key, value[key])
        return tuple(sorted(value.items()))
    if isinstance(value, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in value
    ):
        return value  # already a step's own (key, value) pairs
    raise PlanError(
        f"resources={value!r}: expected a mapping of keywords ({{'partition': 'gpu', "
        "'time_min': 120, ...}), a transform or preset, a preset's name, or a JobSpec"
    )


def _check_walltime(name: str, key: str, value: object) -> None:
    """A step's walltime must read as one now, not when the plan is described or submitted."""
    try:
        parse_walltime(value, field=key)  # type: ignore[arg-type]
    except SpecError as err:
        raise PlanError(f"step {name!r}: resources[{key!r}]={value!r}: {err.accepted}") from None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise PlanError(f"step name {name!r}: expected a non-empty string")
    return name


@attrs.frozen(init=False)
class Step:
    """One job of a plan: ``Step(name, func, resources, *args, **kwargs)`` calls
    ``func(*args, **kwargs)`` as planit does; :meth:`command` and :meth:`map` make the others."""

    name: str
    work: Work
    resources: Any = attrs.field(hash=False)
    after: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        func: Callable[..., Any],
        resources: Resources = None,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        if not callable(func):
            raise PlanError(f"step {name!r}: func={func!r} is not callable")
        self.__attrs_init__(
            _check_name(name), CallWork(func, args, kwargs), _resources(name, resources)
        )

    @classmethod
    def _make(cls, name: str, work: Work, resources: Any, after: tuple[str, ...] = ()) -> Step:
        step = cls.__new__(cls)
        step.__attrs_init__(_check_name(name), work, _resources(name, resources), after)
        return step

    @classmethod
    def command(cls, name: str, cmd: str, resources: Resources = None) -> Step:
        """A step that runs the shell command ``cmd``."""
        if not isinstance(cmd, str) or not cmd.strip():
            raise PlanError(f"step {name!r}: cmd={cmd!r}: expected a non-empty shell command")
        return cls._make(name, CommandWork(cmd), resources)

    @classmethod
    def map(
        cls,
        name: str,
        fn: Callable[..., Any],
        items: Iterable[Any],
        resources: Resources = None,
        /,
        *args: Any,
        **kwargs: Any,
    ) -> Step:
        """A step that calls ``fn(item, *args, **kwargs)`` for every item, as ONE array."""
        if not callable(fn):
            raise PlanError(f"step {name!r}: fn={fn!r} is not callable")
        return cls._make(name, MapWork(fn, _items(name, items), args, kwargs), resources)

    @classmethod
    def map_cmds(cls, name: str, cmds: Iterable[str], resources: Resources = None) -> Step:
        """A step that runs every shell command of ``cmds``, as ONE array."""
        return cls._make(name, MapWork(None, _items(name, cmds)), resources)

    def with_after(self, *names: str) -> Step:
        """This step, also waiting for the steps ``names`` (edges a tree cannot express)."""
        for name in names:
            _check_name(name)
        merged = tuple(dict.fromkeys((*self.after, *names)))
        return Step._make(self.name, self.work, self.resources, merged)

    @property
    def kind(self) -> str:
        """``call``, ``command`` or ``map``."""
        return {CallWork: "call", CommandWork: "command", MapWork: "map"}[type(self.work)]

    @property
    def tasks(self) -> int:
        """How many scheduler tasks the step asks for (one per item for a map)."""
        return len(self.work.items) if isinstance(self.work, MapWork) else 1


def _items(name: str, items: Iterable[Any]) -> tuple[Any, ...]:
    if isinstance(items, str | bytes):
        raise PlanError(f"step {name!r}: items={items!r}: expected a list, not one string")
    values = tuple(items)
    if not values:
        raise PlanError(f"step {name!r}: a map step needs at least one item")
    return values


def _nodes(kind: str, nodes: Sequence[Any]) -> tuple[Node, ...]:
    if not nodes:
        raise PlanError(
            f"an empty {kind}(): it would run nothing, and paracore refuses it rather than count "
            "it as 0 minutes as planit does (an empty group is most often a list that was meant "
            "to be filled); give it at least one step, or leave it out"
        )
    for node in nodes:
        if not isinstance(node, Step | Chain | Parallel):
            raise PlanError(f"{kind}(...) holds {node!r}: expected Step, Chain or Parallel")
    return tuple(nodes)


@attrs.frozen(init=False)
class Chain:
    """Children one after another: each starts once the previous one succeeded."""

    nodes: tuple[Node, ...]

    def __init__(self, *nodes: Node) -> None:
        self.__attrs_init__(_nodes("Chain", nodes))


@attrs.frozen(init=False)
class Parallel:
    """Children side by side: all start once the same parents succeeded."""

    nodes: tuple[Node, ...]

    def __init__(self, *nodes: Node) -> None:
        self.__attrs_init__(_nodes("Parallel", nodes))


Node: TypeAlias = "Step | Chain | Parallel"


def steps_of(node: Node) -> Iterator[Step]:
    """The steps under ``node``, in the order they are written."""
    if isinstance(node, Step):
        yield node
    else:
        for child in node.nodes:
            yield from steps_of(child)


def _wire(node: Node, incoming: frozenset[str], parents: dict[str, set[str]]) -> frozenset[str]:
    """Record each step's tree parents; return the steps that end ``node``."""
    if isinstance(node, Step):
        parents[node.name] = set(incoming)
        return frozenset({node.name})
    if isinstance(node, Chain):
        current = incoming
        for child in node.nodes:
            current = _wire(child, current, parents)
        return current
    ends: frozenset[str] = frozenset()
    for child in node.nodes:
        ends |= _wire(child, incoming, parents)
    return ends


def results_in(step: Step) -> tuple[str, ...]:
    """The steps whose :class:`Result` the step takes (top level, and inside lists, tuples
    and dicts of its arguments)."""
    work = step.work
    if isinstance(work, CommandWork):
        return ()
    values: list[Any] = [*work.args, *(v for _k, v in work.kwargs)]
    found: list[str] = []
    while values:
        value = values.pop()
        if isinstance(value, Result):
            found.append(value.step)
        elif isinstance(value, list | tuple | set | frozenset):
            values.extend(value)
        elif isinstance(value, dict):
            values.extend(value.values())
    return tuple(dict.fromkeys(reversed(found)))


@attrs.frozen
class Graph:
    """A checked plan: its steps in written order, each step's parents, a topological order."""

    name: str
    steps: tuple[Step, ...]
    parents: Mapping[str, tuple[str, ...]] = attrs.field(eq=False, hash=False)
    order: tuple[str, ...]

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for step in self.steps:
            if step.name == name:
                return step
        raise PlanError(_unknown(name, [s.name for s in self.steps], f"plan {self.name!r}"))

    def children(self, name: str) -> tuple[str, ...]:
        """The steps that wait directly on ``name``."""
        return tuple(n for n in self.order if name in self.parents[n])


def _unknown(name: str, known: Sequence[str], where: str) -> str:
    guess = did_you_mean(name, list(known))
    hint = f"; did you mean {guess!r}?" if guess else ""
    return f"{where} has no step {name!r}{hint} (steps: {', '.join(known)})"


def graph_of(name: str, node: Node) -> Graph:
    """The plan's DAG, or a PlanError: a duplicate step name, an ``after`` or Result naming
    no step, a Result of a command step, or a cycle."""
    if not isinstance(name, str) or not name.strip():
        raise PlanError(f"plan name {name!r}: expected a non-empty string")
    if not isinstance(node, Step | Chain | Parallel):
        raise PlanError(f"Plan({name!r}, {node!r}): expected a Step, Chain or Parallel")
    steps = tuple(steps_of(node))
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise PlanError(f"plan {name!r}: two steps are called {step.name!r}; names must differ")
        seen.add(step.name)
    tree: dict[str, set[str]] = {}
    _wire(node, frozenset(), tree)
    known = [s.name for s in steps]
    kinds = {s.name: s.kind for s in steps}
    for step in steps:
        for other in step.after:
            if other not in seen:
                raise PlanError(_unknown(other, known, f"step {step.name!r}: after: plan {name!r}"))
            tree[step.name].add(other)
        for other in results_in(step):
            if other not in seen:
                raise PlanError(
                    _unknown(other, known, f"step {step.name!r}: Result: plan {name!r}")
                )
            if kinds[other] == "command":
                raise PlanError(
                    f"step {step.name!r} takes Result({other!r}), but {other!r} is a shell "
                    "command and returns nothing: pass files between them instead"
                )
            tree[step.name].add(other)
    parents = {s.name: tuple(n for n in known if n in tree[s.name]) for s in steps}
    order = topological_order(known, parents)
    return Graph(name=name, steps=steps, parents=parents, order=order)


def topological_order(
    names: Sequence[str], parents: Mapping[str, Sequence[str]]
) -> tuple[str, ...]:
    """Every name after all its parents, ties broken by written order; a cycle is a PlanError
    naming it."""
    position = {n: i for i, n in enumerate(names)}
    waiting = {n: set(parents[n]) for n in names}
    order: list[str] = []
    ready = sorted((n for n in names if not waiting[n]), key=position.__getitem__)
    while ready:
        name = ready.pop(0)
        order.append(name)
        freed = []
        for other in names:
            if name in waiting[other]:
                waiting[other].discard(name)
                if not waiting[other]:
                    freed.append(other)
        ready = sorted([*ready, *freed], key=position.__getitem__)
    if len(order) < len(names):
        raise PlanError(f"the steps wait on each other in a cycle: {' -> '.join(_cycle(waiting))}")
    return tuple(order)


def _cycle(waiting: Mapping[str, set[str]]) -> list[str]:
    """One cycle among the steps still waiting (each waits on a parent that also waits)."""
    start = next(n for n, left in waiting.items() if left)
    path = [start]
    while True:
        parent = sorted(waiting[path[-1]])[0]
        if parent in path:
            return [*path[path.index(parent) :], parent][::-1]
        path.append(parent)


def downstream(graph: Graph, names: Iterable[str]) -> tuple[str, ...]:
    """Every step that waits, directly or not, on one of ``names`` (topological order)."""
    return descendants(graph.order, graph.parents, names)


def descendants(
    order: Sequence[str], parents: Mapping[str, Sequence[str]], names: Iterable[str]
) -> tuple[str, ...]:
    """Every name of ``order`` (a topological order) that waits, directly or not, on one of
    ``names``, in that order."""
    hit = set(names)
    found: list[str] = []
    for name in order:
        if name not in hit and hit.intersection(parents[name]):
            hit.add(name)
            found.append(name)
    return tuple(found)


def critical_path(graph: Graph, minutes: Mapping[str, float]) -> tuple[float, tuple[str, ...]]:
    """The longest chain of waits: its total minutes and its steps, first to last.

    Best case, queueing not counted: every step takes its whole walltime, and a map's tasks
    all run at once.
    """
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for name in graph.order:
        best = max(graph.parents[name], key=lambda p: finish[p], default=None)
        finish[name] = (finish[best] if best else 0.0) + minutes[name]
        via[name] = best
    if not finish:
        return 0.0, ()
    last = max(graph.order, key=lambda n: finish[n])
    total = finish[last]
    end: str | None = last
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = via[end]
    return total, tuple(reversed(path))


def node_minutes(node: Node, minutes: Mapping[str, float]) -> float:
    """planit's estimate of a node: a chain's children add up, a parallel group takes its
    longest child."""
    if isinstance(node, Step):
        return minutes[node.name]
    values = [node_minutes(child, minutes) for child in node.nodes]
    return sum(values) if isinstance(node, Chain) else max(values)


@attrs.frozen
class Cost:
    """Requested hours of one step or of many: cores x walltime, GPUs x walltime."""

    core_hours: float = 0.0
    gpu_hours: float = 0.0

    @classmethod
    def of(cls, tasks: int, minutes: float, cpus: int, gpus: int) -> Cost:
        """What ``tasks`` tasks of ``minutes`` each ask for with ``cpus`` and ``gpus`` each."""
        hours = tasks * minutes / 60
        return cls(core_hours=hours * cpus, gpu_hours=hours * gpus)

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.core_hours + other.core_hours, self.gpu_hours + other.gpu_hours)


def total_cost(costs: Mapping[str, Cost], names: Iterable[str]) -> Cost:
    """The sum of the named steps' costs."""
    total = Cost()
    for name in names:
        total = total + costs[name]
    return total


def format_minutes(minutes: float) -> str:
    """``HH:MM:SS``, with ``D-`` in front past a day (as Slurm writes walltimes)."""
    seconds = round(minutes * 60)
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def _label(node: Node, minutes: Mapping[str, float]) -> str:
    text = format_minutes(node_minutes(node, minutes))
    if isinstance(node, Chain):
        return f"▼ Chain [{text}]"
    if isinstance(node, Parallel):
        return f"⇉ Parallel [{text}]"
    return f"● {node.name} [{text}]"


def tree_lines(
    node: Node,
    minutes: Mapping[str, float],
    notes: Mapping[str, str],
    critical: Iterable[str],
    prefix: str = "",
    last: bool = True,
) -> list[tuple[str, bool]]:
    """The tree under ``node`` as planit draws it, one ``(line, on the critical path)`` per
    node; a step's line ends with its ``notes`` entry (resources) and ``*`` on the path."""
    on_path = set(critical)
    marked = isinstance(node, Step) and node.name in on_path
    text = prefix + ("└── " if last else "├── ") + _label(node, minutes)
    if isinstance(node, Step):
        text += f"  {notes.get(node.name, '')}".rstrip() + (" *" if marked else "")
    lines = [(text, marked)]
    if not isinstance(node, Step):
        inner = prefix + ("    " if last else "│   ")
        for i, child in enumerate(node.nodes):
            lines += tree_lines(child, minutes, notes, on_path, inner, i == len(node.nodes) - 1)
    return lines
