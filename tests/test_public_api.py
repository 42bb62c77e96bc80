"""The public surface of paracore: __all__, docstrings, seed API signatures and exceptions."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import itertools
import pkgutil
import types

import pytest

import paracore
import paracore.errors
from paracore.core.retry import RetryPolicy
from paracore.testing import FakeJob

SEED_PARAMETERS = (
    "job_name",
    "partition",
    "time_min",
    "cpus_per_task",
    "mem_gb",
    "env_setup",
    "env",
    "env_merge",
    "jitter_s",
    "account",
    "qos",
    "extra",
    "retries",
    "retry_backoff_s",
)

BUILTIN_PARENT = {
    "SpecError": ValueError,
    "ConfigError": ValueError,
    "KeywordError": TypeError,
    "StoreError": RuntimeError,
    "RunNotFound": LookupError,
    "SchedulerUnreachable": RuntimeError,
    "PilotError": RuntimeError,
    "SubmissionError": RuntimeError,
    "JobTimeoutError": TimeoutError,
    "JobFailedError": RuntimeError,
    "CommandFailedError": RuntimeError,
    "RemoteError": RuntimeError,
    "DependencyError": RuntimeError,
    "PlanError": ValueError,
    "StepFailedError": RuntimeError,
    "WrongTypeError": TypeError,
    "UnpicklableError": TypeError,
    "RemoteTraceback": RuntimeError,
}


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    if name.isupper():
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    """__all__ is sorted (constants, classes, functions) and has no duplicates."""
    assert paracore.__all__ == sorted(paracore.__all__, key=_isort_key)
    assert len(set(paracore.__all__)) == len(paracore.__all__)


def test_all_equals_public_names() -> None:
    """__all__ lists exactly the public non-module names the package defines or re-exports."""
    public = {
        name
        for name in dir(paracore)
        if not name.startswith("_") and not isinstance(getattr(paracore, name), types.ModuleType)
    }
    assert set(paracore.__all__) == public
    assert "__version__" not in paracore.__all__
    assert isinstance(paracore.__version__, str)


def _attribute_docstring(module_name: str, name: str) -> str | None:
    """The string literal right after ``name = ...`` at the top level of a module, if any."""
    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    body = tree.body
    for node, after in itertools.pairwise(body):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        named = any(isinstance(t, ast.Name) and t.id == name for t in targets)
        if named and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            return str(after.value.value)
    return None


@pytest.mark.parametrize("name", paracore.__all__)
def test_every_public_name_has_a_docstring(name: str) -> None:
    """Every name in __all__ carries its own docstring (an instance: one after its assignment)."""
    value = getattr(paracore, name)
    if inspect.isclass(value) or inspect.isroutine(value):
        doc = value.__doc__  # its own, never one inherited from a base class
    else:
        doc = _attribute_docstring(paracore._WHERE[name], name)
    assert doc
    assert doc.strip()


def test_the_docstring_test_refuses_an_undocumented_instance() -> None:
    """An instance is not documented by its type's docstring."""
    assert _attribute_docstring("paracore.core.sentinel", "NOT_GIVEN")
    assert _attribute_docstring("paracore.core.sentinel", "NotGiven") is None


@pytest.mark.parametrize("name", ["run_cmd", "map_cmds", "map_func"])
def test_seed_api_accepts_every_seed_parameter(name: str) -> None:
    """run_cmd, map_cmds and map_func accept every keyword of the seed plan."""
    params = inspect.signature(getattr(paracore, name)).parameters
    expected = SEED_PARAMETERS + (("array_parallelism",) if name != "run_cmd" else ())
    missing = [p for p in expected if p not in params]
    assert not missing
    for p in expected:
        assert params[p].kind is inspect.Parameter.KEYWORD_ONLY, p
        assert params[p].default is not inspect.Parameter.empty, p


def test_seed_api_positional_parameters() -> None:
    """The seed API's positional parameters: the command, the commands, fn and items."""

    def positional(fn) -> list[str]:
        return [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        ]

    assert positional(paracore.run_cmd) == ["cmd"]
    assert positional(paracore.map_cmds) == ["cmds"]
    assert positional(paracore.map_func) == ["fn", "items"]


def test_submit_handle_has_the_seed_surface() -> None:
    """SubmitHandle has job_id, job_name, array_index, log paths, state, result, done, cancel."""
    job = FakeJob.succeeding(5, job_id="9_1", array_index=1, stdout_path="o", stderr_path="e")
    handle = paracore.SubmitHandle(job, job_name="demo", retry=RetryPolicy())
    values = {
        "job_id": "9_1",
        "job_name": "demo",
        "array_index": 1,
        "stdout_path": "o",
        "stderr_path": "e",
    }
    for attribute, value in values.items():
        assert getattr(handle, attribute) == value
    assert isinstance(handle.state, str)
    for method in ("result", "done", "cancel"):
        assert callable(getattr(handle, method))
    assert handle.done() is True
    assert handle.result(timeout=0) == 5


def _all_modules() -> list[types.ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(paracore.__path__, "paracore.")]
    return [importlib.import_module(n) for n in names if not n.endswith("__main__")]


def _exception_classes(modules: list[types.ModuleType] | None = None) -> list[type]:
    """Exception classes defined (not imported) in the given modules (default: errors)."""
    found: dict[str, type] = {}
    for module in modules if modules is not None else [paracore.errors]:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return list(found.values())


def test_exception_table_is_complete() -> None:
    """Every exception class in paracore.errors is known to these tests and exported."""
    names = {cls.__name__ for cls in _exception_classes()}
    assert names == set(BUILTIN_PARENT) | {"ParacoreError"}
    assert names <= set(paracore.__all__)


def test_every_error_users_see_lives_in_errors() -> None:
    """No module but paracore.errors defines an exception, except what runs inside a job."""
    elsewhere = {
        f"{cls.__module__}.{cls.__name__}"
        for cls in _exception_classes(_all_modules())
        if cls.__module__ != "paracore.errors"
    }
    job_side = {n for n in elsewhere if n.startswith("paracore.runtime.")}
    assert elsewhere == job_side
    assert job_side == {
        "paracore.runtime.environment.SetupFailed",
        "paracore.runtime.measure.PilotTaskFailed",
        "paracore.runtime.results.MissingResult",
        "paracore.runtime.safe_files.UntrustedFile",
        "paracore.runtime.tasks.CommandFailed",
    }


@pytest.mark.parametrize("cls", _exception_classes(), ids=lambda c: c.__name__)
def test_exceptions_subclass_root_and_builtin(cls: type[BaseException]) -> None:
    """Every error subclasses ParacoreError and the built-in that fits it."""
    assert issubclass(cls, paracore.ParacoreError)
    if cls is paracore.ParacoreError:
        return
    assert issubclass(cls, BUILTIN_PARENT[cls.__name__])
    builtin_parents = [
        base
        for base in cls.__mro__
        if base.__module__ == builtins.__name__ and base not in (Exception, BaseException, object)
    ]
    assert builtin_parents
