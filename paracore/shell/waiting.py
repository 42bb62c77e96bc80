"""The one wait loop: advance, and between rounds sleep a growing, bounded while.

``SubmitHandle.result`` and ``gather`` both wait through :func:`wait_until`, so a deadline,
the polling interval and an upcoming resubmission are handled the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["MAX_POLL_S", "POLL_S", "wait_until"]

POLL_S = 1.0
"""The first pause between rounds of a wait."""
MAX_POLL_S = 2.0
"""The longest pause between rounds: a round only looks at files and at the poller's answer
(which asks the scheduler at most every few seconds), so a finished job is seen quickly."""


def wait_until(
    advance: Callable[[], bool],
    *,
    timeout: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll_s: float,
    max_poll_s: float,
    next_due: Callable[[], float | None],
    timed_out: Callable[[], BaseException],
) -> None:
    """Call ``advance`` until it returns True; raise ``timed_out()`` at the deadline.

    Between rounds it sleeps ``poll_s``, growing 1.5x per round up to ``max_poll_s``, but never
    past the deadline nor past ``next_due()`` (when a scheduled resubmission falls due).
    """
    deadline = None if timeout is None else clock() + timeout
    poll = poll_s
    while not advance():
        now = clock()
        if deadline is not None and now >= deadline:
            raise timed_out()
        wait = poll if deadline is None else min(poll, deadline - now)
        due = next_due()
        if due is not None:
            wait = min(wait, max(0.0, due - now))
        sleep(wait)
        poll = min(max_poll_s, poll * 1.5)
