"""Layered configuration: merge of plain mappings with provenance, schema checks (pure).

Layers, lowest to highest precedence: the built-in defaults, the user file
``~/.paracore.yaml``, the project file ``./paracore.yaml`` (nearest parent directory that has
one), the file named by ``$PARACORE_CONFIG``, then per-call values. This module never reads a
file or the environment: :mod:`paracore.shell.config_files` does that and hands plain mappings (and
the environment, as a mapping) to the functions here.

Merging is deep for sections, later layers win, and ``null`` in a higher layer clears a value
(the resolved value is ``None``: "let the scheduler decide"). Every leaf remembers the layer,
file and line that set it, so users can ask where a value came from and errors can say.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import yaml

from paracore.core.defaults import BUILTIN_DEFAULTS
from paracore.core.keys import CONFIG_KEYS, FLAT_ALIASES, RESOURCE_FIELDS
from paracore.core.rules import switched_on
from paracore.core.safe import (
    ENV_NAME,
    MAX_CPUS,
    MAX_GPUS,
    SBATCH_OPTION,
    is_env_name,
    is_sbatch_option,
    single_line,
)
from paracore.core.spec import BACKENDS, JobSpec, backend_name_ok
from paracore.core.transforms import (
    Transform,
    preset,
    with_env,
    with_name,
    with_name_template,
    with_resources,
    with_retries,
    with_tags,
)
from paracore.core.units import parse_memory, parse_walltime
from paracore.errors import ConfigError, SpecError

Path_ = tuple[str, ...]

BUILTIN_LAYER = "built-in defaults"
USER_LAYER = "user file"
PROJECT_LAYER = "project file"
ENV_FILE_LAYER = "PARACORE_CONFIG file"
ENV_LAYER = "environment"
CONFIG_ARG_LAYER = "config argument"
CALL_LAYER = "call"

# ---------------------------------------------------------------- provenance values


@attrs.frozen
class Origin:
    """Where a value came from: a layer, and for files the file and line."""

    layer: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.layer} {self.location}" if self.location else self.layer

    @property
    def location(self) -> str:
        """``file:line`` for files, ``$NAME`` for environment variables, else ``""``."""
        if self.file is None:
            return ""
        if self.layer == ENV_LAYER:
            return f"${self.file}"
        return f"{self.file}:{self.line}" if self.line else self.file


@attrs.frozen
class Layer:
    """One configuration layer: a plain nested mapping, and for files their path and lines.

    ``lines`` maps a key's path (a tuple of keys) to the 1-based line where the key is.
    """

    name: str
    data: Mapping[str, Any] = attrs.field(eq=False, hash=False)
    file: str | None = None
    lines: Mapping[Path_, int] = attrs.field(factory=dict, eq=False, hash=False)

    def origin(self, path: Path_) -> Origin:
        """The origin of the value at ``path`` in this layer."""
        line = self.lines.get(path)
        if line is None:  # a leaf inside a free mapping given inline: use its parent's line
            for cut in range(len(path) - 1, 0, -1):
                line = self.lines.get(path[:cut])
                if line is not None:
                    break
        return Origin(self.name, self.file, line)


@attrs.frozen
class Setting:
    """One resolved value and where it came from."""

    value: Any
    origin: Origin


# ---------------------------------------------------------------- merge (pure laws)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _merge2(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: _plain(v) for k, v in low.items()}
    for key, value in high.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = _merge2(current, value)
        else:
            out[key] = _plain(value)
    return out


def merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge plain mappings, later ones winning; ``None`` is a value ("cleared").

    Sections (mappings on both sides) merge key by key; anything else is replaced. The result
    is a new plain dict; the inputs are not changed. ``merge()`` is ``{}``.
    """
    out: dict[str, Any] = {}
    for layer in layers:
        out = _merge2(out, layer)
    return out


def leaves(mapping: Mapping[str, Any], prefix: Path_ = ()) -> dict[Path_, Any]:
    """Every non-mapping value of a nested mapping, keyed by its path."""
    out: dict[Path_, Any] = {}
    for key, value in mapping.items():
        path = (*prefix, key)
        if isinstance(value, Mapping):
            out.update(leaves(value, path))
        else:
            out[path] = value
    return out


def merge_layers(layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[Path_, Origin]]:
    """Merge layers and say, for every leaf of the result, which layer (file, line) set it."""
    merged = merge(*(layer.data for layer in layers))
    origins: dict[Path_, Origin] = {}
    for layer in layers:
        for path in leaves(layer.data):
            origins[path] = layer.origin(path)
    return merged, {path: origins[path] for path in leaves(merged)}


# ---------------------------------------------------------------- YAML text -> Layer (pure)


def _key_lines(node: yaml.Node | None, prefix: Path_, out: dict[Path_, int]) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = str(key_node.value)
        path = (*prefix, key)
        out[path] = key_node.start_mark.line + 1
        _key_lines(value_node, path, out)


MAX_ALIAS_VALUES = 100_000
"""How many values YAML aliases may add to a document: an alias repeats everything its anchor
holds, so a few hundred bytes of nested aliases ("billion laughs") would otherwise expand to
billions of values in every walk over the document."""
MAX_YAML_DEPTH = 100
"""How deeply a document's lists and mappings may nest (configuration nests a few levels)."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _refusal(root: yaml.Node) -> tuple[str, str] | None:
    """What is wrong, and what is accepted, when aliases expand a node graph past
    :data:`MAX_ALIAS_VALUES`, it nests past :data:`MAX_YAML_DEPTH`, or it holds an alias
    inside its own anchor; else None.

    Each distinct node is visited once (sizes are remembered by node), so this takes time in
    proportion to the text, however far the aliases would expand.
    """
    sizes: dict[int, int] = {}
    depths: dict[int, int] = {}
    ancestors: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            children = _children(node)
            sizes[key] = 1 + sum(sizes[id(child)] for child in children)
            depths[key] = 1 + max((depths[id(child)] for child in children), default=0)
            ancestors.discard(key)
            if depths[key] > MAX_YAML_DEPTH:
                return (
                    f"lists and mappings nested more than {MAX_YAML_DEPTH} levels deep",
                    f"documents nested at most {MAX_YAML_DEPTH} levels",
                )
            continue
        if key in sizes:
            continue
        if key in ancestors:
            return (
                "an alias inside its own anchor (a document that contains itself)",
                "aliases of anchors that are complete where the alias is",
            )
        ancestors.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    added = sizes[id(root)] - len(sizes)
    if added > MAX_ALIAS_VALUES:
        return (
            f"{sizes[id(root)]} values once its aliases repeat their anchors",
            f"YAML aliases that add at most {MAX_ALIAS_VALUES} values to a document (an alias "
            "repeats everything its anchor holds); write the values out, or alias smaller anchors",
        )
    return None


def compose_yaml(text: str, name: str, file: str | None = None) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree (it knows each key's line) and the document; malformed YAML is a
    ConfigError naming the file and line (``name`` says what the text is).

    Configuration and spec files share this reader. Before the document is built, one pass
    over the composed nodes refuses aliases that would expand it past
    :data:`MAX_ALIAS_VALUES` values, nesting past :data:`MAX_YAML_DEPTH`, and an alias
    inside its own anchor, each a ConfigError naming the file and what is accepted.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        refused = _refusal(node) if node is not None else None
        if refused is not None:
            raise ConfigError("(document)", *refused, file or name)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if file and mark else (file or name)
        raise ConfigError(
            "(file)",
            getattr(err, "problem", None) or str(err),
            f"{where}: not valid YAML; check the indentation, quotes and brackets near that line",
            name,
        ) from None
    except RecursionError:  # nested past what the YAML composer itself can follow
        raise ConfigError(
            "(document)",
            "lists and mappings nested too deeply to read",
            f"documents nested at most {MAX_YAML_DEPTH} levels",
            file or name,
        ) from None
    finally:
        loader.dispose()
    return node, data


def layer_from_yaml(text: str, name: str, file: str | None = None) -> Layer:
    """Parse YAML text into a :class:`Layer`, keeping each key's line (from ``yaml.compose``).

    Raises ConfigError for malformed YAML or a document that is not a mapping.
    """
    node, data = compose_yaml(text, name, file)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            "(document)", data, "a mapping of settings such as 'clusters:'", f"{name} {file}"
        )
    lines: dict[Path_, int] = {}
    _key_lines(node, (), lines)
    return Layer(name, _plain(data), file, lines)


# ---------------------------------------------------------------- schema


Check = Callable[[Any, str, str], None]


@attrs.frozen
class MapOf:
    """A section whose keys are free names (profiles, presets), each holding ``schema``.

    ``key_ok`` decides which names are accepted, and ``keys`` says so in an error.
    """

    schema: Any
    what: str
    key_ok: Callable[[str], bool] = attrs.field(default=lambda _key: True, eq=False)
    keys: str = ""


def _accepting(accepted: str, test: Callable[[Any], bool]) -> Check:
    def check(value: Any, field: str, source: str) -> None:
        if value is not None and not test(value):
            raise ConfigError(field, value, accepted, source)

    return check


def _is_int(minimum: int, maximum: int | None = None) -> Callable[[Any], bool]:
    return lambda v: (
        isinstance(v, int)
        and not isinstance(v, bool)
        and v >= minimum
        and (maximum is None or v <= maximum)
    )


def _walltime(value: Any, field: str, source: str) -> None:
    if value is not None:
        try:
            parse_walltime(value, field=field, source=source)
        except SpecError as err:
            raise ConfigError(err.field, err.value, err.accepted, err.source) from None


def _memory(value: Any, field: str, source: str) -> None:
    if value is not None:
        try:
            parse_memory(value, field=field, source=source)
        except SpecError as err:
            raise ConfigError(err.field, err.value, err.accepted, err.source) from None


def _scalar(v: Any) -> bool:
    return isinstance(v, str | int | float)


_NAME = _accepting(
    "a name without spaces (e.g. 'compute'), or null",
    lambda v: (
        isinstance(v, str)
        and v.strip() != ""
        and not any(c.isspace() for c in v)
        and single_line(v)
    ),
)
_TEXT = _accepting("a string, or null", lambda v: isinstance(v, str) and v.strip() != "")
_BOOL = _accepting("true or false", lambda v: isinstance(v, bool))
_SECONDS = _accepting(
    "a number of seconds >= 0",
    lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
)
_PARALLELISM = _accepting(
    "a whole number >= 1, 'auto' (from the partition's idle cores at submit time), or null",
    lambda v: v == "auto" or _is_int(1)(v),
)
_SCALAR = _accepting("a string or a number", _scalar)
_LINE = _accepting(
    "a string or a number on one line, without control characters (a newline would add "
    "lines to the batch script)",
    lambda v: _scalar(v) and not isinstance(v, bool) and single_line(str(v)),
)
_PATH = _accepting(
    "a directory path without control characters, or null",
    lambda v: isinstance(v, str) and v.strip() != "" and single_line(v),
)
SBATCH_OPTIONS = MapOf(
    _LINE,
    "sbatch option",
    lambda key: is_sbatch_option(key.replace("_", "-")),
    f"sbatch option names matching {SBATCH_OPTION} (no leading dashes), e.g. 'constraint'",
)
ENV_VARIABLES = MapOf(
    _SCALAR, "environment variable", is_env_name, f"variable names matching {ENV_NAME}"
)
_BACKEND = _accepting(
    f"one of {', '.join(BACKENDS)}, or an installed plugin's name", backend_name_ok
)
_ENV_MERGE = _accepting("'inherit' or 'replace'", lambda v: v in ("inherit", "replace"))

SLURM_SCHEMA: dict[str, Any] = {
    "partition": _NAME,
    "account": _NAME,
    "qos": _NAME,
    "cpus_per_task": _accepting(
        f"a whole number from 1 to {MAX_CPUS}, or null", _is_int(1, MAX_CPUS)
    ),
    "mem_gb": _memory,
    "time_min": _walltime,
    "gpus": _accepting(f"a whole number from 0 to {MAX_GPUS}, or null", _is_int(0, MAX_GPUS)),
    "max_array_parallelism": _accepting("a whole number >= 1, or null", _is_int(1)),
    "array_parallelism": _PARALLELISM,
    "start_jitter_s": _SECONDS,
    "extra": SBATCH_OPTIONS,
}
PROFILE_SCHEMA: dict[str, Any] = {
    "default_env": _TEXT,
    "io_scratch": _TEXT,
    "backend": _BACKEND,
    "log_dir": _PATH,
    "slurm": SLURM_SCHEMA,
}
NAMING_SCHEMA: dict[str, Any] = {
    "default_job_name": _TEXT,
    "max_len": _accepting("a whole number from 16 to 1024", _is_int(16, 1024)),
}
PRESET_SCHEMA: dict[str, Any] = {
    **{k: SLURM_SCHEMA[k] for k in ("partition", "account", "qos", "gpus", "array_parallelism")},
    "cpus_per_task": SLURM_SCHEMA["cpus_per_task"],
    "cpus": SLURM_SCHEMA["cpus_per_task"],
    "mem": _memory,
    "mem_gb": _memory,
    "time": _walltime,
    "time_min": _walltime,
    "extra": SBATCH_OPTIONS,
    "env": ENV_VARIABLES,
    "env_setup": _TEXT,
    "env_merge": _ENV_MERGE,
    "retries": _accepting("a whole number >= 0", _is_int(0)),
    "retry_backoff_s": _SECONDS,
    "tags": MapOf(_SCALAR, "tag"),
    "job_name": _TEXT,
    "name_template": _TEXT,
}
RESUME_MODES = ("auto", "cache", "never")
"""How an identical earlier run is reused: see the run store's documentation."""
STORE_DEFAULT = ".paracore"
"""The run store's folder, relative to the project's root (absolute paths are kept)."""

SCHEMA: dict[str, Any] = {
    "active_cluster": _NAME,
    "validate": _BOOL,
    "store": _PATH,
    "resume": _accepting("'auto', 'cache' or 'never'", lambda v: v in RESUME_MODES),
    "naming": NAMING_SCHEMA,
    "clusters": MapOf(PROFILE_SCHEMA, "cluster profile"),
    "presets": MapOf(PRESET_SCHEMA, "preset"),
}
"""The accepted file format: nested sections (dicts), free-named sections (MapOf), checks."""


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (difflib), or None when nothing is close."""
    found = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _unknown_key(
    key: Any, value: Any, path: Path_, known: Iterable[str], source: str
) -> ConfigError:
    known = sorted(known)
    where = ".".join(path) if path else "the top level"
    guess = did_you_mean(str(key), known)
    hint = f"did you mean {guess!r}? " if guess else ""
    return ConfigError(
        ".".join((*path, str(key))),
        value,
        f"unknown key {key!r}; {hint}keys accepted in {where}: {', '.join(known)}",
        source,
    )


def _check(schema: Any, value: Any, path: Path_, layer: Layer) -> None:
    field = ".".join(path)
    source = str(layer.origin(path))
    if isinstance(schema, dict | MapOf):
        if not isinstance(value, Mapping):
            what = "a section of settings" if isinstance(schema, dict) else "a mapping of names"
            raise ConfigError(
                field, value, f"{what} (a null section is refused: set its values to null)", source
            )
        for key, sub in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{field}.{key}", sub, "keys that are strings", source)
            sub_path = (*path, key)
            if isinstance(schema, MapOf):
                if not schema.key_ok(key):
                    raise ConfigError(
                        ".".join(sub_path), key, schema.keys, str(layer.origin(sub_path))
                    )
                _check(schema.schema, sub, sub_path, layer)
            elif key in schema:
                _check(schema[key], sub, sub_path, layer)
            else:
                raise _unknown_key(key, sub, path, schema, str(layer.origin(sub_path)))
        return
    schema(value, field, source)


def check_layer(layer: Layer) -> None:
    """Raise ConfigError for the first unknown key or bad value in ``layer`` (file and line)."""
    _check(SCHEMA, layer.data, (), layer)


# ---------------------------------------------------------------- resolution


# Flat keys read from the active profile, and their path below clusters.<name>.
_PROFILE_FLAT: dict[str, Path_] = {
    **{k: (k,) for k in PROFILE_SCHEMA if k != "slurm"},
    **{k: ("slurm", k) for k in SLURM_SCHEMA if k != "extra"},
}
_TOP_FLAT: dict[str, Path_] = {
    "default_job_name": ("naming", "default_job_name"),
    "max_len": ("naming", "max_len"),
    "validate": ("validate",),
    "store": ("store",),
    "resume": ("resume",),
}
FLAT_KEYS: tuple[str, ...] = tuple(
    sorted({*CONFIG_KEYS, *_PROFILE_FLAT, *_TOP_FLAT} - set(FLAT_ALIASES) - {"mem_mb"})
)
"""Keys of a resolved configuration (``extra`` options appear as ``extra.<option>``)."""


def _flat_override(key: str, value: Any) -> tuple[str, Any]:
    if key == "mem_mb":
        return "mem_gb", f"{value}M" if isinstance(value, int) else value
    return FLAT_ALIASES.get(key, key), value


@attrs.frozen
class ResolvedConfig:
    """The effective configuration for one cluster profile, with the origin of every value.

    ``settings`` maps flat keys (``partition``, ``time_min``, ``extra.constraint``, ...) to a
    :class:`Setting`; a value of ``None`` means a layer cleared it.
    """

    cluster: str | None
    settings: Mapping[str, Setting] = attrs.field(eq=False, hash=False)
    presets: Mapping[str, Mapping[str, Any]] = attrs.field(eq=False, hash=False)
    preset_origins: Mapping[Path_, Origin] = attrs.field(eq=False, hash=False)
    profiles: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def value(self, key: str, default: Any = None) -> Any:
        """The effective value of ``key``, or ``default`` when no layer set it."""
        setting = self.settings.get(key)
        return default if setting is None else setting.value

    def origin(self, key: str) -> Origin | None:
        """Where the effective value of ``key`` came from (None when no layer set it)."""
        setting = self.settings.get(key)
        return None if setting is None else setting.origin

    @property
    def validate(self) -> bool:
        """Whether to check specs against the live cluster before submitting."""
        return self.value("validate", True) is not False

    def as_dict(self) -> dict[str, Any]:
        """Flat effective values (``extra`` as one mapping without cleared options)."""
        out = {k: s.value for k, s in self.settings.items() if not k.startswith("extra.")}
        extra = self.extra()
        if extra:
            out["extra"] = extra
        return out

    def extra(self) -> dict[str, Any]:
        """The effective extra sbatch options (options cleared with null are left out)."""
        return {
            k.split(".", 1)[1]: s.value
            for k, s in self.settings.items()
            if k.startswith("extra.") and s.value is not None
        }

    def spec_config(self) -> dict[str, Any]:
        """The flat mapping :func:`~paracore.core.transforms.with_config` takes."""
        return {k: v for k, v in self.as_dict().items() if k in CONFIG_KEYS}

    def sources(self) -> dict[str, str]:
        """Flat key -> a short description of its origin, for error messages."""
        return {k: str(s.origin) for k, s in self.settings.items()}

    def preset(self, name: str) -> Transform:
        """The transform for the preset ``name`` defined in the configuration files."""
        if name not in self.presets:
            guess = did_you_mean(name, self.presets)
            hint = f"did you mean {guess!r}? " if guess else ""
            known = ", ".join(sorted(self.presets)) or "none defined (add 'presets:' to a file)"
            raise ConfigError("preset", name, f"no such preset; {hint}presets: {known}")
        return preset_transform(self.presets[name], source=f"preset {name!r}")


def resolve_layers(
    layers: Sequence[Layer],
    *,
    cluster: str | None = None,
    environ: Mapping[str, str] | None = None,
    config: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ResolvedConfig:
    """Resolve file layers, the environment and per-call values into a ResolvedConfig (pure).

    The profile is ``cluster`` if given, else ``$PARACORE_CLUSTER``, else the files'
    ``active_cluster``. ``config`` (the API's ``config=`` mapping) sits just below
    ``overrides`` (per-call values). ``$PARACORE_VALIDATE=0`` turns cluster checks off;
    ``$PARACORE_STORE`` names the run store's folder.
    """
    environ = environ or {}
    for layer in layers:
        check_layer(layer)
    merged, origins = merge_layers(layers)
    profiles = merged.get("clusters") or {}

    settings: dict[str, Setting] = {
        k: Setting(v, Origin(BUILTIN_LAYER)) for k, v in BUILTIN_DEFAULTS.items()
    }
    settings["validate"] = Setting(True, Origin(BUILTIN_LAYER))
    settings["store"] = Setting(STORE_DEFAULT, Origin(BUILTIN_LAYER))
    settings["resume"] = Setting("auto", Origin(BUILTIN_LAYER))
    for key, path in _TOP_FLAT.items():
        if path in origins:
            settings[key] = Setting(merged_get(merged, path), origins[path])

    chosen: str | None
    if cluster is not None:
        chosen, chosen_origin = cluster, Origin(CALL_LAYER)
    elif environ.get("PARACORE_CLUSTER"):
        chosen, chosen_origin = environ["PARACORE_CLUSTER"], Origin(ENV_LAYER, "PARACORE_CLUSTER")
    else:
        chosen = merged.get("active_cluster")
        chosen_origin = origins.get(("active_cluster",), Origin(BUILTIN_LAYER))
    if chosen is not None:
        if chosen not in profiles:
            guess = did_you_mean(str(chosen), profiles)
            hint = f"did you mean {guess!r}? " if guess else ""
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(
                "cluster",
                chosen,
                f"no such cluster profile; {hint}profiles (clusters.<name> in "
                f"~/.paracore.yaml, ./paracore.yaml or $PARACORE_CONFIG): {known}",
                str(chosen_origin),
            )
        settings["cluster"] = Setting(chosen, chosen_origin)
        base = ("clusters", chosen)
        for key, sub in _PROFILE_FLAT.items():
            path = (*base, *sub)
            if path in origins:
                settings[key] = Setting(merged_get(merged, path), origins[path])
        for path, origin in origins.items():
            if path[:4] == (*base, "slurm", "extra") and len(path) == 5:
                settings[f"extra.{path[4]}"] = Setting(merged_get(merged, path), origin)

    if "PARACORE_VALIDATE" in environ:
        settings["validate"] = Setting(
            switched_on(environ["PARACORE_VALIDATE"]), Origin(ENV_LAYER, "PARACORE_VALIDATE")
        )
    if environ.get("PARACORE_STORE"):
        settings["store"] = Setting(environ["PARACORE_STORE"], Origin(ENV_LAYER, "PARACORE_STORE"))
    for flat, layer_name in ((config, CONFIG_ARG_LAYER), (overrides, CALL_LAYER)):
        for key, value in (flat or {}).items():
            if key not in CONFIG_KEYS and key not in FLAT_KEYS:
                raise _unknown_key(key, value, (), [*FLAT_KEYS, *FLAT_ALIASES], layer_name)
            if key == "extra":
                for option, option_value in (value or {}).items():
                    settings[f"extra.{option}"] = Setting(option_value, Origin(layer_name))
                continue
            name, canonical = _flat_override(key, value)
            settings[name] = Setting(canonical, Origin(layer_name))

    presets = merged.get("presets") or {}
    return ResolvedConfig(
        cluster=chosen,
        settings=settings,
        presets=presets,
        preset_origins={p: o for p, o in origins.items() if p[:1] == ("presets",)},
        profiles=tuple(sorted(profiles)),
        files=tuple(layer.file for layer in layers if layer.file),
    )


def merged_get(mapping: Mapping[str, Any], path: Path_) -> Any:
    """The value at ``path`` in a nested mapping (KeyError if absent)."""
    value: Any = mapping
    for key in path:
        value = value[key]
    return value


# ---------------------------------------------------------------- presets as transforms


_PRESET_RESOURCES = tuple(k for k in PRESET_SCHEMA if k in RESOURCE_FIELDS)


def preset_transform(definition: Mapping[str, Any], source: str = "preset") -> Transform:
    """A transform from a preset mapping (resources, env, retries, naming), as in YAML.

    Keys: resource keywords (``partition``, ``time``, ``mem``, ``cpus_per_task``, ``gpus``,
    ``extra``, ...), ``env`` (variables), ``env_setup``, ``env_merge``, ``retries``,
    ``retry_backoff_s``, ``tags``, ``job_name``, ``name_template``. Pure: nothing is read.
    """
    layer = Layer(source, {"presets": {"_": dict(definition)}})
    _check(PRESET_SCHEMA, dict(definition), ("presets", "_"), layer)
    steps: list[Transform] = []
    resources = {k: definition[k] for k in _PRESET_RESOURCES if k in definition}
    if resources:
        steps.append(with_resources(**resources))
    env_options: dict[str, Any] = {}
    if "env_merge" in definition:
        env_options["merge"] = definition["env_merge"]
    if "env_setup" in definition:
        env_options["setup"] = definition["env_setup"]
    if "env" in definition or env_options:
        env = {k: v for k, v in (definition.get("env") or {}).items() if v is not None}
        steps.append(with_env(env, **env_options))
    if "retries" in definition or "retry_backoff_s" in definition:
        retries, backoff = definition.get("retries"), definition.get("retry_backoff_s")

        def retry_step(spec: JobSpec) -> JobSpec:
            count = spec.retry.retries if retries is None else retries
            return with_retries(count, spec, backoff_s=backoff)

        steps.append(retry_step)
    if definition.get("tags"):
        steps.append(with_tags(definition["tags"]))
    if definition.get("name_template"):
        steps.append(with_name_template(definition["name_template"]))
    if "job_name" in definition:
        steps.append(with_name(definition["job_name"]))
    return preset(*steps)
