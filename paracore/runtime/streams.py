"""Copying a child process's output to the job's own log while keeping a bounded copy."""

from __future__ import annotations

from typing import IO

__all__ = ["pump"]


def pump(stream: IO[bytes], sink: IO[str], chunks: list[str], limit_chars: int) -> None:
    """Copy ``stream`` line by line to ``sink`` (the job log); keep its last ``limit_chars``.

    The kept text is appended to ``chunks``; whole lines are dropped from the front once the
    total is over the limit (the newest line always stays).
    """
    kept = 0
    for raw in iter(stream.readline, b""):
        text = raw.decode(errors="replace")
        sink.write(text)
        sink.flush()
        chunks.append(text)
        kept += len(text)
        while kept > limit_chars and len(chunks) > 1:
            kept -= len(chunks.pop(0))
