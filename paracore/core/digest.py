"""Stable digests of text: the same input gives the same digest in every process and machine.

Python's ``hash()`` is salted per process, so anything that must be recognised again later
(a truncated job name, a run's content key) is digested here with BLAKE2b instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["content_key", "stable_digest"]


def stable_digest(data: str | bytes, hex_chars: int = 8) -> str:
    """``hex_chars`` hex characters identifying ``data`` stably (BLAKE2b; text as UTF-8)."""
    if not 2 <= hex_chars <= 128 or hex_chars % 2:
        raise ValueError(f"hex_chars must be an even number from 2 to 128, got {hex_chars}")
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    return hashlib.blake2b(raw, digest_size=hex_chars // 2).hexdigest()


def content_key(kind: str, fields: Mapping[str, Any], parts: Iterable[bytes | str]) -> str:
    """A stable key for a piece of work: what kind it is, how it runs, and what each task runs.

    ``fields`` (resources, environment policy, name, backend) are written as sorted JSON, so
    the order keywords were given in changes nothing; every part is length-framed, so no two
    different lists of parts give the same bytes. Any change in a part or a field gives
    another key.
    """
    digest = hashlib.blake2b(digest_size=16)
    header = json.dumps({"kind": kind, "fields": fields}, sort_keys=True, default=str)
    digest.update(header.encode("utf-8", "surrogatepass"))
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass") if isinstance(part, str) else part
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return digest.hexdigest()
