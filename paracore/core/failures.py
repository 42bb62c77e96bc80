"""Why a job failed, read from the scheduler's own record (pure).

:func:`classify` maps what ``sacct`` says about a finished job (state, exit code, reason) and,
where the scheduler leaves it only there, the tail of the job's stderr, to exactly one
:class:`FailureClass`. It is total: every input maps to one class, and anything unknown maps
to :attr:`FailureClass.UNKNOWN`, which no default policy retries. (The enum is defined in
:mod:`paracore.errors`, which imports nothing of paracore, and re-exported here.)

Facts it relies on (Slurm 22.05):

- with cgroup memory enforcement a job over ``--mem`` ends ``OUT_OF_MEMORY`` (exit ``0:125``);
  with ``OverMemoryKill`` and no cgroups it ends ``FAILED`` (exit ``0:9``) and its stderr says
  ``Exceeded job memory limit``. Both are out of memory;
- ``scancel`` gives ``CANCELLED by <uid>``; a job cancelled by the controller because its
  dependency can never be satisfied (``--kill-on-invalid-dep=yes``) ends plain ``CANCELLED``
  with reason ``Dependency``; without that flag it stays ``PENDING`` (reason
  ``DependencyNeverSatisfied`` in ``squeue``) forever.
"""

from __future__ import annotations

from paracore.errors import FailureClass

__all__ = [
    "DEFAULT_RETRY_ON",
    "NEVER_RETRIED",
    "FailureClass",
    "classify",
    "state_word",
]


DEFAULT_RETRY_ON: frozenset[FailureClass] = frozenset(
    {
        FailureClass.TIMEOUT,
        FailureClass.OUT_OF_MEMORY,
        FailureClass.NODE_FAILURE,
        FailureClass.PREEMPTION,
        FailureClass.BOOT_FAILURE,
        FailureClass.SCHEDULER_UNREACHABLE,
        FailureClass.LOST,
    }
)
"""Failures a bare :class:`~paracore.core.retry.RetryPolicy` retries: the infrastructure's."""

NEVER_RETRIED: frozenset[FailureClass] = frozenset(
    {FailureClass.CANCELLED, FailureClass.DEPENDENCY}
)
"""A person cancelled it, or its parent failed: no policy retries these."""

# Text slurmstepd writes to the job's stderr when it kills a job for its memory.
_MEMORY_KILL_MARKS = ("Exceeded job memory limit", "oom-kill event", "oom_kill event")

_BY_STATE: dict[str, FailureClass] = {
    "TIMEOUT": FailureClass.TIMEOUT,
    "OUT_OF_MEMORY": FailureClass.OUT_OF_MEMORY,
    "NODE_FAIL": FailureClass.NODE_FAILURE,
    "PREEMPTED": FailureClass.PREEMPTION,
    "BOOT_FAIL": FailureClass.BOOT_FAILURE,
    "FAILED": FailureClass.USER_ERROR,
    "COMPLETED": FailureClass.USER_ERROR,  # ran to the end but left an error behind
    "SPECIAL_EXIT": FailureClass.USER_ERROR,
}


def state_word(state: str) -> str:
    """The state's first word, upper-cased: ``"CANCELLED by 0"`` -> ``"CANCELLED"``."""
    words = str(state).split()
    return words[0].upper() if words else ""


def classify(
    state: str,
    *,
    exit_code: int | None = None,
    exit_signal: int | None = None,
    reason: str = "",
    stderr_tail: str = "",
    step_states: tuple[str, ...] = (),
) -> FailureClass:
    """The class of a failed attempt from its scheduler record; total, pure.

    ``state`` is sacct's State as printed (``"CANCELLED by 1000"`` is fine); ``exit_code`` and
    ``exit_signal`` are the two halves of ExitCode; ``reason`` is sacct's Reason;
    ``stderr_tail`` is the end of the job's stderr, needed only to recognise a memory kill by
    ``OverMemoryKill`` (``FAILED 0:9``). ``step_states`` are the states of the job's steps:
    when the payload runs in a step (``srun``, as submitit does) and is OOM-killed there, the
    step ends ``OUT_OF_MEMORY`` while the job row says ``FAILED 1:0`` (measured here).
    """
    word = state_word(state)
    cancelled_by_someone = len(str(state).split()) > 1 and " by " in f" {state} "
    dependency = str(reason).strip().startswith("Dependency")
    if word == "CANCELLED":
        if dependency and not cancelled_by_someone:
            return FailureClass.DEPENDENCY
        return FailureClass.CANCELLED
    if word == "PENDING" and str(reason).strip() == "DependencyNeverSatisfied":
        return FailureClass.DEPENDENCY
    if word in ("FAILED", "COMPLETED") and (
        any(m in stderr_tail for m in _MEMORY_KILL_MARKS)
        or any(state_word(s) == "OUT_OF_MEMORY" for s in step_states)
    ):
        return FailureClass.OUT_OF_MEMORY
    return _BY_STATE.get(word, FailureClass.UNKNOWN)
