"""Spec files as data (pure): YAML with each key's line, ``--set`` overrides, ``${VAR}`` where
the schema allows it, defaults under steps, and ``{item}`` put into a command safely.

Reading the file and checking it against the JSON Schema happen in the shell
(:mod:`paracore.specfile`); everything here is a function of its arguments.
"""

from __future__ import annotations

import copy
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from paracore.core.config import compose_yaml
from paracore.errors import ConfigError

__all__ = [
    "Lines",
    "apply_sets",
    "expand_env",
    "line_of",
    "parse_yaml",
    "substitute",
    "with_defaults",
]

Path_ = tuple[str | int, ...]
Lines = Mapping[Path_, int]

_PLACEHOLDER = re.compile(r"\{(item|index)\}")
_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _node_lines(node: yaml.Node | None, prefix: Path_, out: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            out[path] = key_node.start_mark.line + 1
            _node_lines(value_node, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            out[path] = item.start_mark.line + 1
            _node_lines(item, path, out)


def parse_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int]]:
    """The document and the line of every key and list item (1-based); malformed YAML is a
    ConfigError naming the file and line."""
    node, data = compose_yaml(text, "spec file", file)
    lines: dict[Path_, int] = {}
    _node_lines(node, (), lines)
    return data, lines


def line_of(lines: Lines, path: Sequence[str | int]) -> int | None:
    """The line of ``path``, or of its nearest ancestor that has one."""
    for cut in range(len(path), 0, -1):
        found = lines.get(tuple(path[:cut]))
        if found is not None:
            return found
    return None


def dotted(path: Sequence[str | int]) -> str:
    """``steps[1].resources.partition``: a path as people write it."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def apply_sets(data: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """``data`` with each ``key.sub=value`` of ``sets`` applied (the value read as YAML, so
    ``retries=3`` is a number); sections are made as needed."""
    out: dict[str, Any] = copy.deepcopy(dict(data))
    for given in sets:
        key, eq, text = given.partition("=")
        if not eq or not key.strip():
            raise ConfigError("--set", given, "KEY=VALUE, e.g. resources.partition=debug")
        try:
            value = compose_yaml(text, "--set", given)[1] if text.strip() else ""
        except ConfigError as err:
            if err.field != "(file)":  # aliases past the budget, or nested too deeply
                raise
            value = text  # not YAML: the text as written
        parts = key.strip().split(".")
        target = out
        for part in parts[:-1]:
            current = target.get(part)
            if not isinstance(current, dict):
                current = target[part] = {}
            target = current
        target[parts[-1]] = value
    return out


def _expand_text(text: str, environ: Mapping[str, str], field: str, where: str) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        if name not in environ:
            raise ConfigError(
                field, text, f"${{{name}}} is not set in the environment ('$${{' for a literal)",
                where,
            )  # fmt: skip
        return environ[name]

    return _VARIABLE.sub(one, text)


def resolve_ref(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with its ``$ref`` (to ``#/$defs/...`` of ``root``) followed."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return resolve_ref(root["$defs"][ref.removeprefix("#/$defs/")], root)
    return schema


def child_schema(
    schema: Mapping[str, Any], part: str | int, root: Mapping[str, Any]
) -> Mapping[str, Any]:
    """The (resolved) schema of key ``part`` of a mapping, or item ``part`` of a list, that
    ``schema`` describes ({} when it says nothing)."""
    schema = resolve_ref(schema, root)
    if isinstance(part, int):
        return resolve_ref(schema.get("items", {}), root)
    extra = schema.get("additionalProperties")
    found = schema.get("properties", {}).get(part, extra if isinstance(extra, Mapping) else {})
    return resolve_ref(found, root)


def expand_env(
    value: Any,
    schema: Mapping[str, Any],
    environ: Mapping[str, str],
    *,
    root: Mapping[str, Any] | None = None,
    path: Path_ = (),
    lines: Lines | None = None,
    file: str = "",
    allowed: bool = False,
) -> Any:
    """``value`` with ``${VAR}`` replaced in the strings the schema marks ``x-expand-env``
    (and everything under them); ``$${`` stays a literal ``${``. Elsewhere ``${...}`` is left
    alone (a command's variables are the shell's, on the node)."""
    root = schema if root is None else root
    schema = resolve_ref(schema, root)
    allowed = allowed or bool(schema.get("x-expand-env"))
    if isinstance(value, str):
        if not allowed:
            return value
        where = f"{file}:{line_of(lines or {}, path)}" if file else "spec file"
        return _expand_text(value, environ, dotted(path), where)
    if not isinstance(value, Mapping | list):
        return value

    def child(part: str | int, sub: Any) -> Any:
        return expand_env(
            sub, child_schema(schema, part, root), environ, root=root, path=(*path, part),
            lines=lines, file=file, allowed=allowed,
        )  # fmt: skip

    if isinstance(value, Mapping):
        return {key: child(key, sub) for key, sub in value.items()}
    return [child(i, sub) for i, sub in enumerate(value)]


def with_defaults(defaults: Mapping[str, Any], step: Mapping[str, Any]) -> dict[str, Any]:
    """A step's settings over the file's ``defaults:`` (``resources`` and ``env`` merge key by
    key; everything else: the step's value wins)."""
    out = {**defaults, **step}
    for section in ("resources", "env"):
        if section in defaults or section in step:
            out[section] = {**defaults.get(section, {}), **step.get(section, {})}
    return out


def substitute(template: str, item: Any, index: int) -> str:
    """``template`` with ``{item}`` replaced by the item as ONE shell word (quoted: spaces,
    ``;``, ``$``, quotes and newlines stay literal) and ``{index}`` by its position. Other
    braces (``awk '{print $1}'``) are left alone."""

    def one(match: re.Match[str]) -> str:
        return shlex.quote(str(item)) if match.group(1) == "item" else str(index)

    return _PLACEHOLDER.sub(one, template)
