"""Every error paracore raises, in one place.

Each derives from :class:`ParacoreError` and also from the built-in that fits it, so callers
can catch either ``paracore.ParacoreError`` or plain ``ValueError``/``RuntimeError``/
``TimeoutError``. Messages say what was wrong, where the value came from, and what would be
accepted.

This module is the bottom of the package: it imports nothing of paracore, so every layer can
import it. That is why :class:`FailureClass`, which a :class:`JobFailedError` carries, is
defined here; :mod:`paracore.core.failures` (where it is documented) re-exports it.
"""

from __future__ import annotations

import enum
import pickle
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CommandFailedError",
    "ConfigError",
    "DependencyError",
    "FailureClass",
    "JobFailedError",
    "JobTimeoutError",
    "KeywordError",
    "ParacoreError",
    "PilotError",
    "PlanError",
    "RemoteError",
    "RemoteTraceback",
    "RunNotFound",
    "SchedulerUnreachable",
    "SpecError",
    "StepFailedError",
    "StoreError",
    "SubmissionError",
    "UnpicklableError",
    "WrongTypeError",
]


class FailureClass(str, enum.Enum):
    """Why an attempt failed. The value is the name used in messages and configuration."""

    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    NODE_FAILURE = "node_failure"
    PREEMPTION = "preemption"
    BOOT_FAILURE = "boot_failure"
    CANCELLED = "cancelled"
    USER_ERROR = "user_error"
    SCHEDULER_UNREACHABLE = "scheduler_unreachable"
    DEPENDENCY = "dependency"
    LOST = "lost"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class ParacoreError(Exception):
    """Root of every error paracore raises."""


_QUOTED_CHARS = 200
"""The longest value an error message quotes; a longer one is cut, and says how long it was."""
_PART_CHARS = 2000
"""The longest field, source or explanation an error message holds (they may quote values)."""


def _clipped(text: str, limit: int = _QUOTED_CHARS) -> str:
    """``text``, or its first ``limit`` characters and how long it was, so no message is huge."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class SpecError(ParacoreError, ValueError):
    """A value in a job spec or its configuration is not acceptable.

    The message quotes at most 200 characters of the value, and says how long it was (the
    whole value stays in ``value``).
    """

    def __init__(self, field: str, value: object, accepted: str, source: str | None = None) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        self.source = source
        origin = f" (from {_clipped(source, _PART_CHARS)})" if source else ""
        super().__init__(
            f"{_clipped(field, _PART_CHARS)}={_clipped(repr(value))}{origin}: "
            f"{_clipped(accepted, _PART_CHARS)}"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # keep pickling working despite the custom __init__
        return (type(self), (self.field, self.value, self.accepted, self.source))


class KeywordError(SpecError, TypeError):
    """A function was called with a keyword it does not take (the closest known is named)."""


class WrongTypeError(SpecError, TypeError):
    """A value of a type that cannot be used (also a TypeError, as Python would raise): an
    initializer that is not callable, for instance."""


class UnpicklableError(SpecError, pickle.PicklingError, TypeError):
    """A function or argument cloudpickle cannot send to the node; also a
    ``pickle.PicklingError`` and a ``TypeError``, what ``pickle`` and ``multiprocessing``
    raise, so code written for them catches it."""


class ConfigError(SpecError):
    """A configuration file or value is not acceptable: names the key, the file and line, and
    what would be accepted (with a "did you mean" for a mistyped key)."""


class SubmissionError(ParacoreError, RuntimeError):
    """The scheduler refused a submission, or could not be reached."""


class SchedulerUnreachable(SubmissionError):
    """A scheduler command did not answer (controller or database down, or timed out)."""


class StoreError(ParacoreError, RuntimeError):
    """The run store cannot be used: damaged, locked too long, or written by a newer paracore.

    The message names the file and what to do; nothing else is lost.
    """


class RunNotFound(ParacoreError, LookupError):
    """No run with that id (or id prefix) is recorded in the run store."""


class JobTimeoutError(ParacoreError, TimeoutError):
    """Waiting for a job's result took longer than the caller allowed."""


class PilotError(ParacoreError, RuntimeError):
    """A pilot could not give a recommendation (too many failed tasks, nothing measured)."""


def _failure_class(value: FailureClass | str | None) -> FailureClass | None:
    if value is None or isinstance(value, FailureClass):
        return value
    try:
        return FailureClass(str(value))
    except ValueError:
        return FailureClass.UNKNOWN


class JobFailedError(ParacoreError, RuntimeError):
    """A job ran and failed; carries what is known about why and where its logs are.

    ``exc_type`` and ``exc_message`` hold the original exception's qualified type name and
    message for Python calls; ``returncode`` and ``stderr_tail`` are set for commands;
    ``failure_class`` says why (a :class:`~paracore.core.failures.FailureClass`).
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        state: str | None = None,
        exc_type: str | None = None,
        exc_message: str | None = None,
        returncode: int | None = None,
        stderr_tail: str | None = None,
        stdout_path: str | None = None,
        stderr_path: str | None = None,
        attempts: Sequence[object] = (),
        failure_class: FailureClass | str | None = None,
    ) -> None:
        self.job_id = job_id
        self.failure_class: FailureClass | None = _failure_class(failure_class)
        self.state = state
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.attempts: tuple[object, ...] = tuple(attempts)
        super().__init__(message)


class CommandFailedError(JobFailedError):
    """A shell command exited with a non-zero return code."""


class RemoteError(JobFailedError):
    """A Python call raised inside the job; the original type and message are kept."""


class RemoteTraceback(ParacoreError, RuntimeError):
    """The traceback of a call that failed in the job, as text (with the worker's source
    lines): the ``__cause__`` of the exception ``Pool`` re-raises, as in multiprocessing."""

    def __init__(self, text: str) -> None:
        self.text = text
        super().__init__(text)

    def __str__(self) -> str:
        return self.text


class DependencyError(JobFailedError):
    """A job cannot run because a job it depends on (``after_ok``) failed or was cancelled."""


class PlanError(ParacoreError, ValueError):
    """A workflow plan is not well formed: a duplicate or unknown step name, a cycle, an empty
    group, or a Result of a step that returns nothing."""


class StepFailedError(JobFailedError):
    """A step of a workflow failed for good: carries the step's own error (``__cause__``), the
    step's name and the steps that will not run because of it."""

    def __init__(
        self, message: str, *, step: str, not_run: Sequence[str] = (), **fields: Any
    ) -> None:
        self.step = step
        self.not_run = tuple(not_run)
        super().__init__(message, **fields)
