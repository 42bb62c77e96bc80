"""Stable digests of text: the same input gives the same digest in every process and machine.

Python's ``hash()`` is salted per process, so anything that must be recognised again later
(a truncated job name, a run's content key) is digested here with BLAKE2b instead. The order
of a set of strings follows that salt, and a dict keeps the order its keys were added in, so
a pickle of either can differ between two processes for equal values: :func:`canonical_digest`
digests plain data by what it holds instead.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["canonical_digest", "content_key", "stable_digest"]


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


_SCALARS: dict[type, bytes] = {
    type(None): b"N", bool: b"B", int: b"i", float: b"d", complex: b"j", str: b"s", bytes: b"b"
}  # fmt: skip
_SEQUENCES: dict[type, bytes] = {list: b"l", tuple: b"t"}
_SETS: dict[type, bytes] = {set: b"S", frozenset: b"F"}
_FLAT: dict[type, bytes] = {list: b"L", tuple: b"T"}


def _framed(raw: bytes) -> bytes:
    return len(raw).to_bytes(8, "big") + raw


def _scalar(kind: type, value: Any) -> bytes:
    raw: bytes
    if kind is str:
        raw = value.encode("utf-8", "surrogatepass")
    elif kind is bytes:
        raw = bytes(value)
    elif kind is int:
        raw = format(value, "x").encode()  # hex: no limit on the number of digits
    elif kind is float:
        raw = value.hex().encode()
    elif kind is complex:
        raw = f"{value.real.hex()},{value.imag.hex()}".encode()
    else:  # None, True, False
        raw = repr(value).encode()
    return _SCALARS[kind] + raw


class _Walk:
    """One walk over a value: each container digested once (remembered by identity while the
    walk holds the value), so shared parts cost nothing more however often they appear."""

    def __init__(self, fallback: Callable[[Any], bytes]) -> None:
        self.fallback = fallback
        self.done: dict[int, bytes] = {}
        self.open: set[int] = set()
        self.contains_itself = False

    def code(self, value: Any) -> bytes:
        kind = type(value)
        if kind in _SCALARS:
            return _scalar(kind, value)
        key = id(value)
        found = self.done.get(key)
        if found is not None:
            return found
        if key in self.open:  # the digest is not used: the value is digested by its pickle
            self.contains_itself = True
            return b"?"
        self.open.add(key)
        try:
            code = self._container(kind, value)
        finally:
            self.open.discard(key)
        self.done[key] = code
        return code

    def _container(self, kind: type, value: Any) -> bytes:
        if kind in _SEQUENCES:
            if all(type(item) in _SCALARS for item in value):
                try:  # plain scalars only: their repr is exact, and made in C
                    return _FLAT[kind] + _digest(repr(value).encode("utf-8", "surrogatepass"))
                except ValueError:  # an int with more digits than repr allows
                    pass
            parts = [_framed(self.code(item)) for item in value]
            return _SEQUENCES[kind] + _digest(b"".join(parts))
        if kind in _SETS:
            parts = sorted(_framed(self.code(item)) for item in value)
            return _SETS[kind] + _digest(b"".join(parts))
        if kind is dict:
            pairs = sorted((_framed(self.code(k)), _framed(self.code(v))) for k, v in value.items())
            return b"m" + _digest(b"".join(k + v for k, v in pairs))
        return b"p" + _digest(self.fallback(value))


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=32).digest()


def canonical_digest(value: Any, fallback: Callable[[Any], bytes]) -> bytes:
    """32 bytes that identify ``value`` by what it holds, the same in every process.

    Plain data is digested by content: ``None``, ``bool``, ``int``, ``float``, ``complex``,
    ``str``, ``bytes``, and lists, tuples, dicts, sets and frozensets of plain data (exact
    types; a subclass such as ``OrderedDict`` is another object). A set's or frozenset's
    members are sorted by their own digests and a dict's items by their keys', so neither the
    hash seed nor the order a dict was filled in changes the digest; a list stays in its order,
    and a list is not a tuple. Anything else is digested by ``fallback(obj)`` (a pickle): its
    digest is stable when its pickle is, which a set inside it does not make sure of. A value
    that contains itself, or nests deeper than the stack, is digested whole by ``fallback``.
    """
    walk = _Walk(fallback)
    try:
        code = walk.code(value)
    except RecursionError:
        walk.contains_itself = True
    if walk.contains_itself:
        return _digest(b"p" + fallback(value))
    return _digest(code)
