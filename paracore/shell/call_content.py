"""What a Python call, or a map's items, contribute to a run's content key: the function and
its arguments (the items) digested by what they hold
(:func:`paracore.core.digest.canonical_digest`), so the same work gives the same key in every
process, whatever the hash seed or the order a dict was filled in.
"""

from __future__ import annotations

import pickletools
import warnings
from typing import Any

import cloudpickle

from paracore.core.digest import canonical_digest

__all__ = ["call_content", "value_content"]

_SET_OPCODES = frozenset({"EMPTY_SET", "ADDITEMS", "FROZENSET"})
_SCAN_LIMIT = 16 * 2**20
"""Pickles longer than this are not searched for sets (no warning, however they vary)."""


def _holds_a_set(pickled: bytes) -> bool:
    """Whether a pickle builds a set or frozenset (whose order may follow the hash seed)."""
    if len(pickled) > _SCAN_LIMIT or not (b"\x8f" in pickled or b"\x91" in pickled):
        return False
    try:
        return any(op.name in _SET_OPCODES for op, _arg, _pos in pickletools.genops(pickled))
    except Exception:  # not a pickle this module can read: no claim either way
        return False


def _name(value: Any) -> str:
    name = getattr(value, "__qualname__", None)
    return name if isinstance(name, str) else f"{type(value).__qualname__} object"


def value_content(value: Any) -> bytes:
    """The bytes ``value`` adds to a content key: 32 bytes that are the same in every process.

    Plain data is digested by what it holds: sets sorted, dicts by key, recursively. Any other
    object is digested by its cloudpickle; when such a pickle holds a set (its order may change
    between processes), a warning says that running the same work again may submit it again
    instead of re-attaching. Raises what cloudpickle raises for an object it cannot pickle.
    """
    unsettled: list[str] = []

    def pickled(obj: Any) -> bytes:
        data: bytes = cloudpickle.dumps(obj)
        if _holds_a_set(data):
            unsettled.append(_name(obj))
        return data

    digest = canonical_digest(value, pickled)
    if unsettled:
        warnings.warn(
            f"paracore: {', '.join(sorted(set(unsettled)))} holds a set, whose order can "
            "change between processes: running this work again may submit it again instead "
            "of re-attaching to it (pass sets as plain arguments or items, or sorted tuples)",
            stacklevel=3,
        )
    return digest


def call_content(blob: bytes) -> bytes:
    """The bytes a call task's ``blob`` (the cloudpickle of ``(fn, args, kwargs)``) adds to
    its run's content key: :func:`value_content` of the call read back, so its arguments are
    digested by what they hold. A blob that cannot be read back or pickled again here is used
    as it is."""
    try:
        call = cloudpickle.loads(blob)
        return value_content(call)
    except Exception:
        return blob
