"""Errors paracore raises.

Every error derives from :class:`ParacoreError` and also from the built-in that fits it, so
callers can catch either ``paracore.ParacoreError`` or plain ``ValueError``/``RuntimeError``.
Messages say what was wrong, where the value came from, and what would be accepted.
"""

from __future__ import annotations

from collections.abc import Sequence


class ParacoreError(Exception):
    """Root of every error paracore raises."""


class SpecError(ParacoreError, ValueError):
    """A value in a job spec or its configuration is not acceptable."""

    def __init__(self, field: str, value: object, accepted: str, source: str | None = None) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        self.source = source
        origin = f" (from {source})" if source else ""
        super().__init__(f"{field}={value!r}{origin}: {accepted}")

    def __reduce__(self):  # keep pickling working despite the custom __init__
        return (type(self), (self.field, self.value, self.accepted, self.source))


class SubmissionError(ParacoreError, RuntimeError):
    """The scheduler refused a submission, or could not be reached."""


class JobTimeoutError(ParacoreError, TimeoutError):
    """Waiting for a job's result took longer than the caller allowed."""


class JobFailedError(ParacoreError, RuntimeError):
    """A job ran and failed; carries what is known about why and where its logs are.

    ``exc_type`` and ``exc_message`` hold the original exception's qualified type name and
    message for Python calls; ``returncode`` and ``stderr_tail`` are set for commands.
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
        failure_class: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.failure_class = failure_class
        self.state = state
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self.attempts = tuple(attempts)
        super().__init__(message)


class CommandFailedError(JobFailedError):
    """A shell command exited with a non-zero return code."""


class RemoteError(JobFailedError):
    """A Python call raised inside the job; the original type and message are kept."""


class DependencyError(JobFailedError):
    """A job cannot run because a job it depends on (``after_ok``) failed or was cancelled."""
