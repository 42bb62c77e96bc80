"""Stable digests of text: the same input gives the same digest in every process and machine.

Python's ``hash()`` is salted per process, so anything that must be recognised again later
(a truncated job name, a run's content key) is digested here with BLAKE2b instead.
"""

from __future__ import annotations

import hashlib

__all__ = ["stable_digest"]


def stable_digest(data: str | bytes, hex_chars: int = 8) -> str:
    """``hex_chars`` hex characters identifying ``data`` stably (BLAKE2b; text as UTF-8)."""
    if not 2 <= hex_chars <= 128 or hex_chars % 2:
        raise ValueError(f"hex_chars must be an even number from 2 to 128, got {hex_chars}")
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hashlib.blake2b(raw, digest_size=hex_chars // 2).hexdigest()
