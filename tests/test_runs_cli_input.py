"""Bad input to the runs commands (and ``run --timeout``) is one line and exit status 2,
refused before anything is submitted or removed; never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import paracore as pc
from paracore.cli import EXIT_BAD_INPUT, main


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out=out), out.getvalue()


@pytest.fixture
def run_id(tmp_path: Path) -> str:
    """A finished, collected local run of one task with one attempt."""
    pc.run_cmd("echo first", backend="local", config={"log_dir": str(tmp_path)}).result(60)
    (run,) = pc.Session().store().runs()
    return run.id


@pytest.mark.parametrize("attempt", ["0", "-1", "2", "5"])
def test_an_attempt_out_of_range_lists_the_valid_ones(
    run_id: str, attempt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Attempts are numbered from 1: 0, negative and past the last are refused, naming the
    range (``--attempt 0`` used to show the last one, ``-1`` and ``5`` an IndexError)."""
    code, text = _cli("logs", run_id, "0", "--attempt", attempt)
    err = capsys.readouterr().err.strip().splitlines()
    assert (code, text) == (EXIT_BAD_INPUT, "")
    assert len(err) == 1 and f"no attempt {attempt}" in err[0]
    assert "numbered 1 to 1" in err[0]
    code, text = _cli("logs", run_id, "0", "--attempt", "1", "--stream", "stdout")
    assert code == 0 and "first" in text


def test_a_manifest_that_cannot_be_written_is_bad_input(
    run_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--output in a folder that does not exist: one line naming it, exit status 2."""
    target = tmp_path / "missing" / "manifest.jsonl"
    assert main(["manifest", run_id, "--output", str(target)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(target) in err[0] and "No such file or directory" in err[0]
    assert main(["manifest", run_id, "--output", str(tmp_path / "m.jsonl")]) == 0
    assert run_id in (tmp_path / "m.jsonl").read_text()


@pytest.mark.parametrize("value", ["-5", "0", "nan", "inf", "-inf", "soon"])
def test_run_refuses_a_bad_timeout_before_submitting(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --timeout`` must be a finite number of seconds above 0: refused by the parser,
    so nothing is submitted."""
    spec = tmp_path / "job.yaml"
    spec.write_text("name: never\ncommand: 'touch submitted'\n")
    with pytest.raises(SystemExit) as refused:
        main(["run", str(spec), "--backend", "local", "--wait", f"--timeout={value}"])
    assert refused.value.code == EXIT_BAD_INPUT
    assert "--timeout" in capsys.readouterr().err
    assert pc.Session().store().runs() == []


@pytest.mark.parametrize("value", ["-5", "nan", "inf", "-inf", "a month"])
def test_gc_refuses_a_bad_age(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``gc --older-than`` must be a finite number of days, 0 or more."""
    with pytest.raises(SystemExit) as refused:
        main(["gc", f"--older-than={value}"])
    assert refused.value.code == EXIT_BAD_INPUT
    assert "--older-than" in capsys.readouterr().err
    assert _cli("gc", "--older-than", "0", "--dry-run")[0] == 0
