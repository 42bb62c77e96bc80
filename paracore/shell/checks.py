"""What would only fail on the node, caught before anything is submitted.

:func:`prepare_task` turns a spec into the task the job runs, refusing a Python call that
cloudpickle cannot send and a command whose program is not on ``$PATH``.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cloudpickle

from paracore.core.resolved import ResolvedSpec
from paracore.core.spec import Call, Command, command_problem
from paracore.errors import SpecError, UnpicklableError
from paracore.runtime.tasks import CallTask, CommandTask

__all__ = [
    "check_command",
    "check_pickles",
    "describe_payload",
    "prepare_task",
    "programs",
    "task_for",
    "task_options",
]

Which = Callable[[str], str | None]

# Shell keywords and builtins: a command starting with one needs no program on PATH.
_SHELL_WORD_TEXT = (
    "if then else elif fi case esac for while until do done function select time { } [ [[ ! "
    ". : source export set unset cd echo printf test true false exit return eval exec "
    "read shift trap type ulimit umask wait alias command builtin declare local let"
)
_SHELL_WORDS = frozenset(_SHELL_WORD_TEXT.split())


def task_options(spec: ResolvedSpec) -> dict[str, Any]:
    """What every task of ``spec`` carries: environment policy, start jitter, a record key."""
    env = spec.env
    return {
        "record_key": uuid.uuid4().hex[:16],
        "merge": env.merge,
        "overlay": env.overlay,
        "setup": env.setup,
        "start_jitter_s": spec.start_jitter_s,
    }


def task_for(spec: ResolvedSpec, sys_path: Sequence[str] = ()) -> CommandTask | CallTask:
    """The callable that runs inside the job; ``sys_path`` is where the node may import from."""
    common = task_options(spec)
    payload = spec.payload
    if isinstance(payload, Command):
        return CommandTask(payload.cmd, **common)
    try:
        return CallTask.pack(
            payload.fn, payload.args, payload.kwargs, sys_path=tuple(sys_path), **common
        )
    except Exception:
        _explain_unpicklable(payload)
        raise


def prepare_task(
    spec: ResolvedSpec, which: Which, sys_path: Sequence[str] = ()
) -> CommandTask | CallTask:
    """The job's task, after failing on what would otherwise only fail on the node.

    A call that cannot be pickled, or a command whose program is not on PATH (and no
    ``env_setup`` that might provide it), raises SpecError before anything is submitted.
    """
    payload = spec.payload
    if isinstance(payload, Command):
        check_command(payload.cmd, spec, which)
    return task_for(spec, sys_path)


def check_command(cmd: str, spec: ResolvedSpec, which: Which, field: str = "cmd") -> None:
    """Raise SpecError when a program ``cmd`` runs is not on PATH (unless ``env_setup`` may
    provide it), or one that cannot be a command (a NUL in it); ``field`` names the command
    in the message (``cmds[3]``)."""
    problem = command_problem(cmd)
    if problem is not None:
        raise SpecError(field, cmd, problem)
    if spec.env.setup is not None:
        return
    for position, program in programs(cmd):
        if "/" in program:
            # a path is only sure to mean the same thing at the start of the command
            found = position > 0 or Path(program).exists()
        else:
            found = which(program) is not None
        if not found:
            raise SpecError(
                field,
                cmd,
                f"program {program!r} was not found on PATH; give its full path, fix PATH, "
                "or use env_setup to load it (e.g. 'module load ...')",
            )


def describe_payload(spec: ResolvedSpec) -> str:
    """``command 'python x.py'`` or ``call train()``: how errors name the work."""
    payload = spec.payload
    if isinstance(payload, Command):
        text = payload.cmd if len(payload.cmd) <= 60 else payload.cmd[:57] + "..."
        return f"command {text!r}"
    return f"call {payload.label}()"


_SEPARATORS = frozenset({"|", "||", "&&", ";", "&", "|&", ";;"})
_OPAQUE = ("(", ")", "{", "}", "<(", ">(")
# Words that run the next word as the program: ``time prog``, ``env A=1 prog``, ...
_PREFIXES = frozenset({"time", "exec", "command", "nohup", "env"})
# Words after which PATH (or what a name means) may have changed: stop checking there.
_ENV_CHANGING = frozenset(
    {"source", ".", "export", "module", "ml", "conda", "mamba", "spack", "eval", "set", "alias"}
)


def programs(cmd: str) -> list[tuple[int, str]]:
    """The programs a command line runs, where the shell grammar makes them clear.

    Each simple command of a pipeline or list (``a | b``, ``a && b``, ``a; b``) is looked at:
    leading ``NAME=value`` assignments and prefixes such as ``time`` or ``env`` are skipped,
    and shell keywords, builtins and anything with expansions are left alone. Checking stops
    at a subshell or group, and at anything that may change PATH (``source``, ``module``,
    ``export``, an assignment). Each program comes with the position of its simple command
    (0 for the first).
    """
    try:
        lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
    except ValueError:
        return []
    found: list[tuple[int, str]] = []
    segment: list[str] = []
    position = 0
    for token in [*tokens, ";"]:
        if token in _OPAQUE or token.startswith(_OPAQUE):
            break
        if token not in _SEPARATORS:
            segment.append(token)
            continue
        if segment and (segment[0] in _ENV_CHANGING or all(map(_is_assignment, segment))):
            break
        program = _program_of(segment)
        if program is not None:
            found.append((position, program))
        if segment:
            position += 1
        segment = []
    return found


def _program_of(words: list[str]) -> str | None:
    """The program of one simple command, or None when it is not plain to see."""
    rest = list(words)
    while rest and (_is_assignment(rest[0]) or rest[0] in _PREFIXES or rest[0].startswith("-")):
        rest.pop(0)
    if not rest:
        return None
    word = rest[0]
    if word in _SHELL_WORDS or any(c in word for c in "$`*?[~<>"):
        return None
    return word


def _is_assignment(word: str) -> bool:
    name, eq, _value = word.partition("=")
    return bool(eq) and name.isidentifier()


def _explain_unpicklable(payload: Call) -> None:
    """Raise a SpecError naming the first part of a call that cloudpickle cannot send."""
    check_pickles("fn", payload.fn)
    for i, arg in enumerate(payload.args):
        check_pickles(f"args[{i}]", arg)
    for key, value in payload.kwargs:
        check_pickles(f"kwargs[{key!r}]", value)


def check_pickles(field: str, value: object) -> None:
    """Raise SpecError naming ``field`` when cloudpickle cannot send ``value`` to the node."""
    try:
        cloudpickle.dumps(value)
    except Exception as err:
        raise UnpicklableError(
            field,
            value,
            f"something cloudpickle can send to the node ({type(err).__name__}: {err}); pass "
            "file paths or plain data instead of open files, locks, sockets or connections",
        ) from None
