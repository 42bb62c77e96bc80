"""The import contract between paracore's layers: core is pure, runtime stands alone.

``core/`` may import only the standard library's pure modules, attrs, yaml, toolz, other core
modules and ``paracore.errors``; ``runtime/`` only the standard library, cloudpickle and
itself (submitit inside a function, in the job); ``backends/`` never the shell; nothing below
the shell imports the convenience API or the CLI.
"""

from __future__ import annotations

import ast
import subprocess
import sys
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


def imports(source: str, *, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source`` (only the module level if asked)."""
    tree = ast.parse(source)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: list[tuple[int, str]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.If) and top_level_only:
            continue  # TYPE_CHECKING blocks are for type checkers only
    return found


def _stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def core_violations(source: str) -> list[str]:
    """Why ``source`` (a core module) breaks the contract, one line per import."""
    out = []
    for line, module in imports(source):
        top = module.split(".")[0]
        if module.startswith("paracore."):
            allowed = module.startswith("paracore.core.") or module == "paracore.errors"
        elif _stdlib(module):
            allowed = top not in IMPURE
        else:
            allowed = top in CORE_THIRD_PARTY
        if not allowed:
            out.append(f"line {line}: imports {module}")
    return out


def runtime_violations(source: str) -> list[str]:
    """Why ``source`` (a runtime module) breaks the contract."""
    out = []
    for line, module in imports(source, top_level_only=True):
        top = module.split(".")[0]
        if module.startswith("paracore."):
            allowed = module.startswith("paracore.runtime.")
        else:
            allowed = _stdlib(module) or (top in RUNTIME_THIRD_PARTY and top != "submitit")
        if not allowed:
            out.append(f"line {line}: imports {module}")
    return out


def lower_layer_violations(source: str, forbidden: tuple[str, ...]) -> list[str]:
    """Imports of any of the ``forbidden`` packages."""
    return [
        f"line {line}: imports {module}"
        for line, module in imports(source)
        if any(module == f or module.startswith(f + ".") for f in forbidden)
    ]


def _sources(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("core"), ids=lambda p: p.name)
def test_core_is_pure(path: Path) -> None:
    """A core module imports no I/O, no shell, no backend, no submitit or subprocess."""
    assert core_violations(path.read_text()) == []


@pytest.mark.parametrize("path", _sources("runtime"), ids=lambda p: p.name)
def test_runtime_stands_alone(path: Path) -> None:
    """A runtime module imports only the standard library, cloudpickle and runtime."""
    assert runtime_violations(path.read_text()) == []


@pytest.mark.parametrize("path", _sources("backends"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_backends_never_import_the_shell(path: Path) -> None:
    """Backends sit below the shell: no shell, API or CLI imports."""
    forbidden = ("paracore.shell", "paracore.api", "paracore.cli")
    assert lower_layer_violations(path.read_text(), forbidden) == []


def test_errors_depend_only_on_core() -> None:
    """paracore.errors, imported everywhere, imports nothing above the core."""
    source = (PACKAGE / "errors.py").read_text()
    forbidden = ("paracore.shell", "paracore.backends", "paracore.api", "paracore.cli")
    assert lower_layer_violations(source, forbidden) == []
    assert core_violations(source) == []


@pytest.mark.parametrize(
    ("source", "checker"),
    [
        ("import subprocess\n", core_violations),
        ("from paracore.shell.submit import submit\n", core_violations),
        ("from paracore.backends.slurm import SlurmBackend\n", core_violations),
        ("def f():\n    import submitit\n", core_violations),
        ("import os\n", core_violations),
        ("import rich.table\n", core_violations),
        ("from paracore.core.spec import JobSpec\n", runtime_violations),
        ("import attrs\n", runtime_violations),
        ("import submitit\n", runtime_violations),
    ],
)
def test_the_contract_catches_a_deliberate_violation(source: str, checker) -> None:
    """Each forbidden import in a synthetic module is reported."""
    assert checker(source)


def test_the_contract_accepts_what_is_allowed() -> None:
    """Pure standard library, attrs and core imports pass; runtime may import submitit late."""
    assert (
        core_violations("import math\nimport attrs\nfrom paracore.core.spec import JobSpec\n") == []
    )
    assert (
        runtime_violations("import os\nimport cloudpickle\ndef f():\n    import submitit\n") == []
    )


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
        "paracore.runtime.streams",
        "paracore.runtime.tasks",
    }
