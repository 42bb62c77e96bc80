"""The import contract between paracore's layers (the table in docs/architecture.md).

``core/`` may import only the standard library's pure modules, attrs, yaml, toolz, other core
modules and ``paracore.errors``; ``runtime/`` only the standard library, cloudpickle and
itself (submitit inside a function, in the job); ``backends/`` never the shell; the shell
never the API layer (``api``, ``pool``, ``workflow``, ``specfile``, ``cli``); ``errors``
nothing of paracore. Relative imports are resolved to the modules they name (ruff's TID252
also bans them), ``from paracore import X`` below the API layer counts as importing the lazy
facade, which may load any layer, and the modules' import graph has no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "paracore"

# Modules that touch the outside world: files, processes, the clock, the network, terminals.
IMPURE = frozenset(
    {
        "os",
        "sys",
        "io",
        "subprocess",
        "shutil",
        "tempfile",
        "pathlib",
        "time",
        "datetime",
        "socket",
        "sqlite3",
        "threading",
        "multiprocessing",
        "signal",
        "fcntl",
        "glob",
        "importlib",
        "submitit",
        "cloudpickle",
        "rich",
    }
)
CORE_THIRD_PARTY = frozenset({"attrs", "yaml", "toolz"})
RUNTIME_THIRD_PARTY = frozenset({"cloudpickle", "submitit"})

# The layer above the shell: what users call, and the command line.
API_LAYER = ("paracore.api", "paracore.pool", "paracore.workflow", "paracore.specfile")
ABOVE_THE_SHELL = (*API_LAYER, "paracore.cli")
ABOVE_THE_BACKENDS = ("paracore.shell", *ABOVE_THE_SHELL)


def module_of(path: Path, package: Path = PACKAGE) -> tuple[str, bool]:
    """The dotted name of the module in ``path`` (a file of ``package``) and whether it is a
    package's ``__init__``."""
    parts = path.relative_to(package.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


MODULES: frozenset[str] = frozenset(module_of(p)[0] for p in PACKAGE.rglob("*.py"))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name ``from <node.module> import ...`` refers to, inside ``module``."""
    if node.level == 0:
        return node.module or ""
    if not module:
        raise ValueError(f"line {node.lineno}: a relative import, but no module name to resolve")
    package = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(package) - 1:
        raise ValueError(f"line {node.lineno}: relative import beyond the top-level package")
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(
    source: str,
    module: str = "",
    is_package: bool = False,
    *,
    top_level_only: bool = False,
    known: Collection[str] = MODULES,
) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, the code of ``module``.

    Relative imports are resolved against ``module``; ``from a import b`` gives ``a.b`` when
    that is one of the ``known`` modules, else ``a``. Only the module level (not functions,
    not ``if TYPE_CHECKING:`` blocks) if asked.
    """
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: list[tuple[int, str]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.append((node.lineno, name if name in known else base))
    return list(dict.fromkeys(found))


def _stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def core_violations(source: str, module: str = "paracore.core.example") -> list[str]:
    """Why ``source`` (the core module ``module``) breaks the contract, one line per import."""
    out = []
    for line, name in imports(source, module):
        top = name.split(".")[0]
        if top == "paracore":
            allowed = _within(name, ("paracore.core", "paracore.errors"))
        elif _stdlib(name):
            allowed = top not in IMPURE
        else:
            allowed = top in CORE_THIRD_PARTY
        if not allowed:
            out.append(f"line {line}: imports {name}")
    return out


def runtime_violations(source: str, module: str = "paracore.runtime.example") -> list[str]:
    """Why ``source`` (the runtime module ``module``) breaks the contract."""
    out = []
    for line, name in imports(source, module, top_level_only=True):
        top = name.split(".")[0]
        if top == "paracore":
            allowed = _within(name, ("paracore.runtime",))
        else:
            allowed = _stdlib(name) or (top in RUNTIME_THIRD_PARTY and top != "submitit")
        if not allowed:
            out.append(f"line {line}: imports {name}")
    return out


def lower_layer_violations(
    source: str, forbidden: tuple[str, ...], module: str = "paracore.shell.example"
) -> list[str]:
    """Imports of any of the ``forbidden`` packages, or of the ``paracore`` facade itself
    (``import paracore``, ``from paracore import Pool``), whose lazy names reach every layer."""
    return [
        f"line {line}: imports {name}"
        for line, name in imports(source, module)
        if _within(name, forbidden) or name == "paracore"
    ]


def errors_violations(source: str) -> list[str]:
    """paracore.errors sits at the bottom: it imports nothing of paracore, and it is pure."""
    below = [
        f"line {line}: imports {name}"
        for line, name in imports(source, "paracore.errors")
        if _within(name, ("paracore",))
    ]
    return below + core_violations(source, "paracore.errors")


def _sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Which of the package's modules each module imports.

    Every import counts: at the module level, inside functions and in ``if TYPE_CHECKING:``
    blocks. Not counted are the package ``__init__`` modules Python runs on the way to a
    submodule (``import paracore.shell.session`` runs ``paracore/__init__.py``): paracore's
    are lazy and import nothing at run time.
    """
    paths = {module_of(path, root): path for path in root.rglob("*.py")}
    known = {name for name, _ in paths}
    graph: dict[str, set[str]] = {}
    for (name, is_package), path in paths.items():
        found = imports(path.read_text(), name, is_package, known=known)
        graph[name] = {m for _, m in found if m in known and m != name}
    return graph


def cycles(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) in each group of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                groups.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return [_cycle_through(sorted(group)[0], group, graph) for group in groups]


def _cycle_through(start: str, group: set[str], graph: Mapping[str, Collection[str]]) -> list[str]:
    """A shortest way from ``start`` back to itself inside ``group`` (breadth first)."""
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w not in group or w in came_from:
                    continue
                came_from[w] = v
                if w == start:
                    path = [start]
                    while path[-1] != start or len(path) == 1:
                        path.append(came_from[path[-1]])
                    return path[::-1]
                following.append(w)
        frontier = following
    raise AssertionError(f"{start} is in no cycle")


def _named(folder: str) -> Iterator[object]:
    for path in _sources(folder):
        yield pytest.param(path, module_of(path)[0], id=str(path.relative_to(PACKAGE)))


@pytest.mark.parametrize(("path", "module"), _named("core"))
def test_core_is_pure(path: Path, module: str) -> None:
    """A core module imports no I/O, no shell, no backend, no submitit or subprocess."""
    assert core_violations(path.read_text(), module) == []


@pytest.mark.parametrize(("path", "module"), _named("runtime"))
def test_runtime_stands_alone(path: Path, module: str) -> None:
    """A runtime module imports only the standard library, cloudpickle and runtime."""
    assert runtime_violations(path.read_text(), module) == []


@pytest.mark.parametrize(("path", "module"), _named("backends"))
def test_backends_never_import_the_shell(path: Path, module: str) -> None:
    """Backends sit below the shell: no shell, API layer or CLI imports."""
    assert lower_layer_violations(path.read_text(), ABOVE_THE_BACKENDS, module) == []


@pytest.mark.parametrize(("path", "module"), _named("shell"))
def test_the_shell_never_imports_the_api_layer(path: Path, module: str) -> None:
    """The shell sits below api, pool, workflow, specfile and the CLI, which are built on it."""
    assert lower_layer_violations(path.read_text(), ABOVE_THE_SHELL, module) == []


def test_errors_import_nothing_of_paracore() -> None:
    """paracore.errors, imported by every layer, is at the bottom: no paracore import at all."""
    assert errors_violations((PACKAGE / "errors.py").read_text()) == []


def test_the_modules_import_no_cycle() -> None:
    """No module imports itself through others (imports inside functions included)."""
    assert [" -> ".join(cycle) for cycle in cycles(import_graph())] == []


@pytest.mark.parametrize(
    ("source", "checker"),
    [
        ("import subprocess\n", core_violations),
        ("from paracore.shell.submit import submit\n", core_violations),
        ("from paracore.backends.slurm import SlurmBackend\n", core_violations),
        ("def f():\n    import submitit\n", core_violations),
        ("import os\n", core_violations),
        ("import rich.table\n", core_violations),
        ("from paracore import Pool\n", core_violations),
        ("from paracore.core.spec import JobSpec\n", runtime_violations),
        ("import attrs\n", runtime_violations),
        ("import submitit\n", runtime_violations),
        ("from paracore.core.failures import classify\n", errors_violations),
        ("def f():\n    from paracore.core import spec\n", errors_violations),
    ],
)
def test_the_contract_catches_a_deliberate_violation(source: str, checker) -> None:
    """Each forbidden import in a synthetic module is reported."""
    assert checker(source)


def test_a_relative_import_cannot_dodge_the_contract() -> None:
    """``from ..shell import handle`` in a core module is an import of paracore.shell.handle."""
    source = "from ..shell import handle\n"
    assert core_violations(source, "paracore.core.spec") == [
        "line 1: imports paracore.shell.handle"
    ]
    assert core_violations("from . import spec\n", "paracore.core.names") == []
    backend = "def f():\n    from ...shell.session import current_session\n"
    assert lower_layer_violations(backend, ABOVE_THE_BACKENDS, "paracore.backends.slurm.jobs") == [
        "line 2: imports paracore.shell.session"
    ]
    assert runtime_violations("from ..core import spec\n", "paracore.runtime.tasks") == [
        "line 1: imports paracore.core.spec"
    ]


@pytest.mark.parametrize(
    "source",
    [
        "from paracore.api import run_cmd\n",
        "import paracore.workflow\n",
        "def f():\n    from paracore.pool import Pool\n",
        "from paracore import specfile\n",
        "from .. import api\n",
        "from ..cli.runs import main\n",
        "from paracore import Plan\n",
    ],
)
def test_a_shell_module_importing_the_api_layer_is_reported(source: str) -> None:
    """However it is spelled, a shell module reaching up to the API layer is a violation."""
    assert lower_layer_violations(source, ABOVE_THE_SHELL, "paracore.shell.maps")


def test_the_contract_accepts_what_is_allowed() -> None:
    """Pure standard library, attrs and core imports pass; runtime may import submitit late."""
    assert (
        core_violations("import math\nimport attrs\nfrom paracore.core.spec import JobSpec\n") == []
    )
    assert core_violations("from paracore.errors import SpecError\n") == []
    assert (
        runtime_violations("import os\nimport cloudpickle\ndef f():\n    import submitit\n") == []
    )
    shell = "from paracore.shell.session import current_session\nfrom . import store\n"
    assert lower_layer_violations(shell, ABOVE_THE_SHELL, "paracore.shell.maps") == []
    assert errors_violations("import enum\nfrom typing import Any\n") == []


def test_a_cycle_is_found_and_named(tmp_path: Path) -> None:
    """Two modules importing each other (one of them inside a function) make a named cycle."""
    package = tmp_path / "paracore"
    (package / "shell").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "shell" / "__init__.py").write_text("")
    (package / "shell" / "session.py").write_text(
        "def store():\n    from paracore.shell.config_files import resolve\n"
    )
    (package / "shell" / "config_files.py").write_text("from .session import current_session\n")
    (package / "shell" / "submit.py").write_text("from paracore.shell import session\n")
    assert cycles(import_graph(package)) == [
        ["paracore.shell.config_files", "paracore.shell.session", "paracore.shell.config_files"]
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"a"}}) == [["a", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_importing_the_runtime_loads_nothing_else_of_paracore() -> None:
    """What runs on the node pays only for itself: no core, shell, backend, attrs or rich."""
    code = (
        "import sys, paracore.runtime.tasks, paracore.runtime.measure\n"
        "import paracore.runtime.chunks, paracore.runtime.calls\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('paracore', 'attrs', 'rich', 'yaml', 'toolz', 'submitit'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert set(loaded) == {
        "paracore",
        "paracore.runtime",
        "paracore.runtime.calls",
        "paracore.runtime.chunks",
        "paracore.runtime.environment",
        "paracore.runtime.measure",
        "paracore.runtime.safe_files",
        "paracore.runtime.streams",
        "paracore.runtime.tasks",
    }
