"""A paracore backend shipped in its own package, as a site would: it runs each task at once,
in the submitting process, and appends one line per call to ``$ECHO_BACKEND_LOG``.

It implements paracore's Backend interface from scratch (docs/backends.md), importing nothing
from paracore, to show the interface is all a plugin needs.
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any

_IDS = itertools.count(1)


def _log(event: str, **fields: Any) -> None:
    path = os.environ.get("ECHO_BACKEND_LOG")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"event": event, **fields}) + "\n")


class EchoJob:
    """A task already run: its value, or the exception it raised."""

    def __init__(self, task: Any, describe: str, array_index: int | None) -> None:
        self.job_id = f"echo-{next(_IDS)}"
        self.array_index = array_index
        self.stdout_path = None
        self.stderr_path = None
        self._error: BaseException | None = None
        self._value: Any = None
        try:
            self._value = task()
            self.state = "COMPLETED"
        except Exception as err:
            self._error = err
            self.state = "FAILED"
        _log("ran", job_id=self.job_id, describe=describe, state=self.state)

    def done(self) -> bool:
        return True

    def outcome(self) -> Any:
        if self._error is not None:
            from paracore.errors import RemoteError  # the error type handles expect

            raise RemoteError(
                f"{self.job_id} raised {type(self._error).__name__}: {self._error}",
                job_id=self.job_id,
                state="FAILED",
                exc_type=type(self._error).__qualname__,
                exc_message=str(self._error),
            )
        return self._value

    def cancel(self) -> None:
        """Nothing to cancel: the task already ran."""


class EchoBackend:
    """Runs each task at once in this process and logs it (an out-of-tree example)."""

    name = "echo"
    schedules_dependencies = False
    measures_in_task = True
    keeps_files = False

    def __init__(self, session: Any = None) -> None:
        self._session = session

    def check(self, spec: Any, *, origins: Any, validate: Any) -> Any:
        _log("check", job_name=spec.name)
        return spec

    def submit(self, spec: Any, tasks: Any, describes: Any, *, after: Any = ()) -> list[EchoJob]:
        _log("submit", tasks=len(tasks))
        many = len(tasks) > 1
        return [
            EchoJob(task, describe, i if many else None)
            for i, (task, describe) in enumerate(zip(tasks, describes, strict=True))
        ]

    def reattach(self, spec: Any, job_id: str, **_: Any) -> EchoJob:
        raise LookupError(f"{job_id}: the echo backend keeps nothing to re-attach to")

    def accounting(self, job_ids: Any) -> dict[str, Any]:
        return {}

    def cancel(self, job_ids: Any) -> None:
        _log("cancel", job_ids=list(job_ids))

    def limits(self, partition: Any) -> None:
        return None

    def preview(self, spec: Any, *, array_size: Any = None, token: Any = None) -> str:
        return f"# echo backend: {array_size or 1} task(s), run in the submitting process\n"
