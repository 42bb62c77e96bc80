"""Shared Hypothesis strategies for paracore's tests (one small, documented function each)."""

from __future__ import annotations

import string

from hypothesis import strategies as st

_NAME_FIRST = string.ascii_letters + string.digits
_NAME_REST = _NAME_FIRST + "._-"
_AWKWARD = " /\\%'\"`$*?:;,!@#&()[]{}<>|~^=+\t\n.-_éüßæ日本語🚀😀\u0301\u200b\x00"

MAX_WALLTIME_MINUTES = 366 * 24 * 60
MAX_MEMORY_MB = 64 * 1024 * 1024


def walltime_minutes(max_value: int = MAX_WALLTIME_MINUTES) -> st.SearchStrategy[int]:
    """Positive walltimes in whole minutes (default: up to a year), the canonical unit."""
    return st.integers(min_value=1, max_value=max_value)


def memory_mb(max_value: int = MAX_MEMORY_MB) -> st.SearchStrategy[int]:
    """Positive memory sizes in whole MB, biased to include exact G and T multiples."""
    return st.one_of(
        st.integers(min_value=1, max_value=max_value),
        st.integers(min_value=1, max_value=max(1, max_value // 1024)).map(lambda g: g * 1024),
        st.integers(min_value=1, max_value=max(1, max_value // 1024**2)).map(lambda t: t * 1024**2),
    )


def job_names(max_len: int = 80) -> st.SearchStrategy[str]:
    """Valid job names (matching ``paracore.names.ALLOWED_PATTERN``) of at most ``max_len``."""
    return st.builds(
        str.__add__,
        st.sampled_from(_NAME_FIRST),
        st.text(alphabet=_NAME_REST, max_size=max_len - 1),
    )


def any_text_names() -> st.SearchStrategy[str]:
    """Arbitrary text a user might pass as a name: unicode, spaces, slashes, ``%``, very long."""
    return st.one_of(
        st.text(),
        st.text(alphabet=st.sampled_from(_AWKWARD + _NAME_REST), max_size=60),
        st.text(alphabet=st.sampled_from(_AWKWARD + _NAME_REST), min_size=70, max_size=300),
        job_names(max_len=300),
    )
