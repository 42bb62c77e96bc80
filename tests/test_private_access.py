"""No module touches another module's private names.

A name starting with one underscore belongs to the module that defines it: other modules go
through public attributes and methods (for handles and drivers, the protocols in
:mod:`paracore.shell.protocols`). The check is by name: ``obj._x`` is fine in a module that
defines ``_x`` itself (as a function, class, method, assignment or ``self._x``), and on
``self``/``cls`` anywhere; ``module._x``, ``from m import _x`` and ``getattr(obj, "_x")``
count like any other access.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "paracore"

OWNERS = frozenset({"self", "cls"})
ACCESSORS = frozenset({"getattr", "setattr", "hasattr", "delattr"})

# Private names of code outside the project, by module (path relative to the repository).
ALLOWED: dict[str, frozenset[str] | None] = {
    # submitit has no public way to build an sbatch script or submit an array with options.
    "paracore/backends/slurm/executor.py": frozenset(
        {"_executor", "_make_submission_file_text", "_submit_command", "_submitit_command_str"}
    ),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _on_owner(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in OWNERS


def defined_names(tree: ast.AST) -> set[str]:
    """The private names a module defines: functions, classes, assignments, ``self._x``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for sub in ast.walk(target):
                    if isinstance(sub, ast.Name):
                        names.add(sub.id)
                    elif isinstance(sub, ast.Attribute) and _on_owner(sub.value):
                        names.add(sub.attr)
    return {name for name in names if _private(name)}


def private_accesses(source: str) -> list[tuple[int, str, str]]:
    """(line, private name, code) of every access to a private name ``source`` does not own."""
    tree = ast.parse(source)
    own = defined_names(tree)
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            if _private(node.attr) and node.attr not in own and not _on_owner(node.value):
                found.append((node.lineno, node.attr, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    found.append((node.lineno, alias.name, f"from {node.module} import ..."))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ACCESSORS
            and len(node.args) >= 2
        ):
            target, name = node.args[0], node.args[1]
            if (
                isinstance(name, ast.Constant)
                and isinstance(name.value, str)
                and _private(name.value)
                and name.value not in own
                and not _on_owner(target)
            ):
                found.append((node.lineno, name.value, ast.unparse(node)))
    return sorted(found)


def violations(path: Path) -> list[str]:
    """The accesses in one package module that its allowlist entry does not cover."""
    where = path.relative_to(ROOT).as_posix()
    if where in ALLOWED and ALLOWED[where] is None:
        return []
    allowed = ALLOWED.get(where) or frozenset()
    return [
        f"{where}:{line}: {code}"
        for line, name, code in private_accesses(path.read_text())
        if name not in allowed
    ]


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_touches_another_modules_private_names(path: Path) -> None:
    assert violations(path) == []


def test_every_allowlist_entry_is_still_needed() -> None:
    """A stale entry would hide a new access: each allowed name is still used there."""
    for where, names in ALLOWED.items():
        used = {name for _, name, _ in private_accesses((ROOT / where).read_text())}
        assert used, f"{where} no longer touches private names: remove its entry"
        if names is not None:
            assert names <= used, f"{where}: unused entries {sorted(names - used)}"


def test_a_handles_private_attribute_is_reported() -> None:
    source = "def wait(handle):\n    return handle._final\n"
    assert private_accesses(source) == [(2, "_final", "handle._final")]


def test_module_privates_imports_and_getattr_are_reported() -> None:
    source = (
        "from paracore.shell.submit import _resubmit\n"
        "import paracore.shell.submit as submit\n"
        "submit._limits_for(None)\n"
        "getattr(handle, '_ledger', None)\n"
    )
    assert [name for _, name, _ in private_accesses(source)] == [
        "_resubmit",
        "_limits_for",
        "_ledger",
    ]


def test_own_names_self_cls_and_dunders_pass() -> None:
    source = (
        "class Group:\n"
        "    def __init__(self):\n"
        "        self._members = []\n"
        "    @classmethod\n"
        "    def make(cls):\n"
        "        return cls._default()\n"
        "    def merge(self, other):\n"
        "        return self._members + other._members + [other.__class__]\n"
    )
    assert private_accesses(source) == []
