"""SubmitOptions: one submission's choices settled once, from keywords and configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

import paracore as pc
import paracore.shell.config_layers as config_layers
from paracore.core.options import SubmitOptions
from paracore.shell.config_files import settle_options


def noop() -> str:
    """A step that does nothing."""
    return "done"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder of its own, with no user configuration."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("PARACORE_CONFIG", "PARACORE_STORE", "PARACORE_VALIDATE", "PARACORE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def test_an_unknown_resume_mode_is_refused_with_its_origin(project: Path) -> None:
    """A bad resume value names the field, the value and where it came from."""
    with pytest.raises(pc.SpecError, match="'auto', 'cache' or 'never'"):
        SubmitOptions(resume="sometimes")
    (project / "paracore.yaml").write_text("resume: sometimes\n")
    with pytest.raises(pc.ConfigError, match=r"paracore\.yaml"):
        settle_options()


def test_keywords_win_over_the_configuration(project: Path) -> None:
    """resume and validate given as keywords win; unset, the files decide."""
    (project / "paracore.yaml").write_text("resume: never\nvalidate: false\n")
    settled = settle_options()
    assert (settled.resume, settled.validate) == ("never", False)
    given = settle_options(resume="cache", validate=True)
    assert (given.resume, given.validate) == ("cache", True)
    assert settled.store == str(project / ".paracore")


def test_work_that_waits_on_others_is_never_reattached() -> None:
    """for_dependent turns any mode into never, and leaves the rest alone."""
    options = SubmitOptions(resume="cache", validate=False, origins={"mem_gb": "call"})
    dependent = options.for_dependent()
    assert dependent.resume == "never"
    assert (dependent.validate, dependent.origin_of) == (False, {"mem_gb": "call"})


def test_the_configuration_is_read_once_per_run_cmd(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run_cmd reads the configuration files once (the store's folder comes with the options)."""
    reads: list[object] = []
    real = config_layers.load_layers

    def counted(*args: object, **kwargs: object) -> object:
        reads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(config_layers, "load_layers", counted)
    (project / "paracore.yaml").write_text("resume: auto\n")
    assert pc.run_cmd("true", backend="local").result(timeout=60).returncode == 0
    assert len(reads) == 1


def test_a_plan_takes_resume_from_the_configuration(project: Path) -> None:
    """`resume: never` in paracore.yaml makes a plan submit every step anew, as for run_cmd."""
    plan = pc.Plan("again", pc.Step("only", noop))
    first = plan.submit(backend="local")
    assert first.wait(timeout=120)["only"] == "done"
    assert plan.submit(backend="local").how["only"] == "reused"
    (project / "paracore.yaml").write_text("resume: never\n")
    fresh = plan.submit(backend="local")
    assert fresh.how["only"] == "submitted"
    assert fresh.wait(timeout=120)["only"] == "done"
