"""Spec files: a job, a map or a workflow kept in a reviewed YAML file next to the code.

A file is checked against the JSON Schema shipped with paracore
(``paracore/schemas/spec-file.schema.json``): a wrong key or type fails with the file, the
line, the key and the closest accepted key. Then it becomes what the Python API would have
made: one job (``command`` or ``call``), one map (with ``items``, ``items_from`` or ``glob``;
``{item}`` goes into a command as one shell-quoted word), or a workflow (``steps``, each a job
or a map with a ``name`` and ``after``). ``paracore run``, ``preview`` and ``validate``
(:mod:`paracore.cli.file_commands`) use :func:`load_spec_file` and :class:`SpecFile`.
"""

from __future__ import annotations

import functools
import glob as globbing
import importlib
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from paracore.api import Keywords, build_spec
from paracore.core.config import did_you_mean
from paracore.core.options import SubmitOptions
from paracore.core.spec import Call, Command, JobSpec
from paracore.core.specfile_schema import (
    Lines,
    apply_sets,
    child_schema,
    dotted,
    expand_env,
    line_of,
    parse_yaml,
    resolve_ref,
    substitute,
    with_defaults,
)
from paracore.core.transforms import with_backend
from paracore.errors import ConfigError
from paracore.workflow import Parallel, Plan, Step, step_keywords

__all__ = ["SCHEMA_FILE", "SpecFile", "load_spec_file", "spec_file_schema"]

SCHEMA_FILE = "spec-file.schema.json"
_WORK_KEYS = ("env_setup", "retries", "retry_backoff_s", "preset", "cluster", "job_name")


@functools.cache
def spec_file_schema() -> Mapping[str, Any]:
    """The JSON Schema of spec files, as shipped in the package."""
    text = resources.files("paracore.schemas").joinpath(SCHEMA_FILE).read_text("utf-8")
    schema: Mapping[str, Any] = json.loads(text)
    return schema


# ---------------------------------------------------------------- checking


def _schema_at(schema: Mapping[str, Any], path: Sequence[str | int]) -> Mapping[str, Any]:
    """The (resolved) schema of the value at ``path``."""
    node = resolve_ref(schema, schema)
    for part in path:
        node = child_schema(node, part, schema)
    return node


def _describe_type(node: Mapping[str, Any]) -> str:
    if "anyOf" in node:
        return " or ".join(_describe_type(n) for n in node["anyOf"])
    if "const" in node:
        return repr(node["const"])
    if "enum" in node:
        return "one of " + ", ".join(repr(v) for v in node["enum"])
    kind = node.get("type", "a value")
    names = {"object": "a mapping", "array": "a list", "integer": "a whole number",
             "number": "a number", "string": "a string", "boolean": "true or false"}  # fmt: skip
    kinds = [str(k) for k in (kind if isinstance(kind, list) else [kind])]
    text = " or ".join(names.get(k, k) for k in kinds)
    if "minimum" in node:
        text += f" >= {node['minimum']}"
    if "pattern" in node:
        text += f" matching {node['pattern']}"
    return text


def _schema_errors(data: Any, file: str, lines: Lines) -> None:
    """Raise a ConfigError for the first way ``data`` breaks the schema (file:line, key, what
    is accepted, and the closest key for an unknown one)."""
    import jsonschema

    schema = spec_file_schema()
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(data), key=lambda e: (list(map(str, e.path)), e.validator)
    )
    if not errors:
        return
    error = errors[0]
    path = list(error.absolute_path)
    where = f"{file}:{line_of(lines, path) or 1}"
    if error.validator == "additionalProperties":
        node = _schema_at(schema, path)
        known = list(node.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        key = unknown[0]
        guess = did_you_mean(key, known)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise ConfigError(
            dotted([*path, key]),
            error.instance[key],
            f"unknown key {key!r}; {hint}keys accepted here: {', '.join(known)}",
            f"{file}:{line_of(lines, [*path, key]) or 1}",
        )
    if error.validator == "required":
        raise ConfigError(dotted(path), "(missing)", error.message, where)
    node = _schema_at(schema, path)
    typed = error.validator in ("type", "anyOf", "pattern", "minimum", "const")
    accepted = _describe_type(node) if typed else error.message
    raise ConfigError(dotted(path), error.instance, accepted, where)


def _rule(ok: bool, field: str, value: Any, accepted: str, file: str, lines: Lines,
          path: Sequence[str | int]) -> None:  # fmt: skip
    if not ok:
        raise ConfigError(field, value, accepted, f"{file}:{line_of(lines, path) or 1}")


def _check_work(section: Mapping[str, Any], path: list[str | int], file: str, lines: Lines) -> None:
    """What the schema leaves to code: one of command/call, one source of items, no ``args``
    in a map."""
    where = dotted(path) if path else "the file"
    has = [k for k in ("command", "call") if k in section]
    _rule(len(has) == 1, where, sorted(section),
          "exactly one of 'command' (a shell command) or 'call' (module:function)",
          file, lines, [*path, has[1]] if len(has) > 1 else path)  # fmt: skip
    sources = [k for k in ("items", "items_from", "glob") if k in section]
    _rule(len(sources) <= 1, where, sources, "at most one of 'items', 'items_from', 'glob'",
          file, lines, [*path, sources[-1]] if sources else path)  # fmt: skip
    if sources:
        _rule("args" not in section, dotted([*path, "args"]), section.get("args"),
              "no 'args' in a map: the item is the first argument (use kwargs)",
              file, lines, [*path, "args"])  # fmt: skip
    elif "command" in section:
        for key in ("args", "kwargs"):
            _rule(key not in section, dotted([*path, key]), section.get(key),
                  "no arguments for a command (put them in the command)", file, lines,
                  [*path, key])  # fmt: skip


def _check_rules(data: Mapping[str, Any], file: str, lines: Lines) -> None:
    if "steps" not in data:
        only = "'defaults' only in a workflow (with 'steps')"
        _rule("defaults" not in data, "defaults", data.get("defaults"), only, file, lines,
              ["defaults"])  # fmt: skip
        _check_work(data, [], file, lines)
        return
    for key in ("command", "call", "items", "items_from", "glob", "args", "kwargs"):
        _rule(key not in data, key, data.get(key),
              "a workflow's work goes in its steps (or shared settings in 'defaults')",
              file, lines, [key])  # fmt: skip
    names = [step["name"] for step in data["steps"]]
    for i, step in enumerate(data["steps"]):
        _check_work(step, ["steps", i], file, lines)
        _rule(step["name"] not in names[:i], f"steps[{i}].name", step["name"],
              "a name no other step has", file, lines, ["steps", i, "name"])  # fmt: skip
        for j, other in enumerate(step.get("after", [])):
            guess = did_you_mean(other, names)
            hint = f"did you mean {guess!r}? " if guess else ""
            _rule(other in names and other != step["name"], f"steps[{i}].after[{j}]", other,
                  f"{hint}the name of another step ({', '.join(names)})", file, lines,
                  ["steps", i, "after", j])  # fmt: skip


# ---------------------------------------------------------------- the file


@attrs.frozen
class SpecFile:
    """A checked spec file: its path, its data (``--set`` applied, ``${VAR}`` expanded where
    allowed), each key's line, and its kind: ``job``, ``map`` or ``workflow``."""

    path: Path
    data: Mapping[str, Any] = attrs.field(eq=False)
    lines: Lines = attrs.field(eq=False, repr=False)

    @property
    def name(self) -> str:
        """The file's ``name``."""
        return str(self.data["name"])

    @property
    def kind(self) -> str:
        """``workflow`` (it has steps), ``map`` (items) or ``job``."""
        if "steps" in self.data:
            return "workflow"
        return "map" if _has_items(self.data) else "job"

    def where(self, *path: str | int) -> str:
        """``file:line`` of a key, for messages."""
        return f"{self.path}:{line_of(self.lines, path) or 1}"

    # ------------------------------------------------------------ building

    def keywords(self, section: Mapping[str, Any], *, cluster: str | None = None) -> Keywords:
        """The convenience API's keywords for a job's or map's settings (named after the file
        unless ``job_name`` says otherwise)."""
        settings = {"job_name": self.name, **_step_resources(section, cluster)}
        kw = step_keywords(self.name, settings)
        return attrs.evolve(kw, resume=self.data["resume"]) if "resume" in self.data else kw

    def function(self, section: Mapping[str, Any], *path: str | int) -> Callable[..., Any]:
        """The function ``call:`` names, imported now (the spec file's folder is importable,
        here and on the nodes)."""
        text = str(section["call"])
        module_name, _, attr = text.partition(":")
        folder = str(self.path.parent.absolute())
        if folder not in sys.path:
            sys.path.insert(0, folder)
        try:
            found: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as err:
            raise ConfigError(
                dotted([*path, "call"]),
                text,
                f"an importable function, module:function ({type(err).__name__}: {err}); the "
                "spec file's folder and the installed packages are searched",
                self.where(*path, "call"),
            ) from None
        if not callable(found):
            raise ConfigError(
                dotted([*path, "call"]), text, "a callable", self.where(*path, "call")
            )
        fn: Callable[..., Any] = found
        return fn

    def items(self, section: Mapping[str, Any], *path: str | int) -> list[Any]:
        """The map's items: listed, read from a file (one per line), or matched by a glob
        (sorted paths); relative paths are relative to the spec file."""
        base = self.path.parent
        if "items" in section:
            return list(section["items"])
        if "items_from" in section:
            source = base / str(section["items_from"])
            try:
                text = source.read_text()
            except OSError as err:
                raise ConfigError(
                    dotted([*path, "items_from"]), str(section["items_from"]),
                    f"a readable file of items, one per line ({err.strerror}: {source})",
                    self.where(*path, "items_from"),
                ) from None  # fmt: skip
            found = [line.strip() for line in text.splitlines() if line.strip()]
        else:
            pattern = str(section["glob"])
            full = pattern if os.path.isabs(pattern) else str(base / pattern)
            found = sorted(globbing.glob(full, recursive=True))
        if not found:
            key = "items_from" if "items_from" in section else "glob"
            raise ConfigError(dotted([*path, key]), section[key], "at least one item",
                              self.where(*path, key))  # fmt: skip
        return found

    def payload(self, section: Mapping[str, Any], *path: str | int) -> Command | Call:
        """A job's payload: the command, or the call with its arguments."""
        if "command" in section:
            return Command(str(section["command"]))
        fn = self.function(section, *path)
        return Call(fn, tuple(section.get("args", ())), dict(section.get("kwargs", {})))

    def commands(self, section: Mapping[str, Any], items: Sequence[Any]) -> list[str]:
        """A command map's commands: ``{item}`` shell-quoted, ``{index}`` its position."""
        return [substitute(str(section["command"]), item, i) for i, item in enumerate(items)]

    def mapped(self, section: Mapping[str, Any], *path: str | int) -> Callable[[Any], Any]:
        """A call map's function of one item (its ``kwargs`` bound)."""
        fn = self.function(section, *path)
        kwargs = dict(section.get("kwargs", {}))
        return functools.partial(fn, **kwargs) if kwargs else fn

    def job_spec(
        self,
        *,
        cluster: str | None = None,
        backend: str | None = None,
        items: Sequence[Any] | None = None,
    ) -> tuple[JobSpec, SubmitOptions]:
        """The spec of a job file (or a map file's spec for its first item) and its
        submission's options; a map's ``items`` are read from the file unless given."""
        section = self.data
        if _has_items(section):
            items = self.items(section) if items is None else items
            first: Command | Call = (
                Command(self.commands(section, items[:1])[0])
                if "command" in section
                else Call(self.mapped(section), (items[0],))
            )
        else:
            first = self.payload(section)
        spec, options = build_spec(first, self.keywords(section, cluster=cluster))
        backend = backend or self.data.get("backend")
        return (spec if backend is None else with_backend(backend, spec)), options

    def plan(self, *, cluster: str | None = None) -> Plan:
        """A workflow file as a :class:`~paracore.workflow.Plan`: its steps side by side, each
        after the steps its ``after`` names."""
        defaults = self.data.get("defaults", {})
        steps = []
        for i, raw in enumerate(self.data["steps"]):
            section = with_defaults(defaults, raw)
            resources = _step_resources(section, cluster)
            name = str(section["name"])
            if _has_items(section):
                items = self.items(section, "steps", i)
                if "command" in section:
                    step = Step.map_cmds(name, self.commands(section, items), resources)
                else:
                    fn = self.function(section, "steps", i)
                    step = Step.map(name, fn, items, resources, **dict(section.get("kwargs", {})))
            elif "command" in section:
                step = Step.command(name, str(section["command"]), resources)
            else:
                fn = self.function(section, "steps", i)
                step = Step(name, fn, resources, *section.get("args", ()),
                            **dict(section.get("kwargs", {})))  # fmt: skip
            steps.append(step.with_after(*section.get("after", ())))
        return Plan(self.name, Parallel(*steps))


def _has_items(section: Mapping[str, Any]) -> bool:
    return any(k in section for k in ("items", "items_from", "glob"))


def _step_resources(section: Mapping[str, Any], cluster: str | None) -> dict[str, Any]:
    """A workflow step's settings as the keywords a Step's resources take."""
    out: dict[str, Any] = dict(section.get("resources", {}))
    for key in _WORK_KEYS:
        if key in section:
            out[key] = section[key]
    if "env" in section:
        out["env"] = {k: str(v) for k, v in section["env"].items()}
    if cluster is not None:
        out["cluster"] = cluster
    return out


def load_spec_file(
    path: str | os.PathLike[str],
    *,
    sets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> SpecFile:
    """Read and check a spec file: YAML, the schema (with ``--set`` values applied first),
    ``${VAR}`` where the schema allows it, then the rules between keys. Every problem is a
    ConfigError naming the file, the line and the key."""
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as err:
        raise ConfigError("FILE", str(file), f"a readable spec file ({err.strerror})") from None
    data, lines = parse_yaml(text, str(file))
    if not isinstance(data, Mapping):
        raise ConfigError("(document)", data, "a mapping with at least 'name:'", str(file))
    data = apply_sets(data, sets)
    _schema_errors(data, str(file), lines)
    data = expand_env(data, spec_file_schema(), os.environ if environ is None else environ,
                      lines=lines, file=str(file))  # fmt: skip
    _check_rules(data, str(file), lines)
    return SpecFile(file, data, lines)
