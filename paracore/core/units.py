"""Parsing and formatting of walltimes and memory sizes (pure functions, no I/O).

Canonical units follow Slurm: walltimes are whole MINUTES (Slurm stores time limits in
minutes) and memory sizes are whole MEGABYTES (MiB, with 1G = 1024M). Anything finer is
rounded UP, so a request never asks for less than the user wrote. The sacct readers
(``parse_rss``, ``parse_elapsed``) return KiB and seconds respectively.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from paracore.core.safe import MAX_MEM_MB, MAX_TIME_MIN
from paracore.errors import SpecError

__all__ = [
    "MEMORY_FORMS",
    "WALLTIME_FORMS",
    "format_memory",
    "format_walltime",
    "int_or_none",
    "mb_to_gb",
    "parse_elapsed",
    "parse_memory",
    "parse_rss",
    "parse_walltime",
]

WALLTIME_FORMS = (
    "expected a positive walltime: int minutes (e.g. 90), or a string in a Slurm --time form "
    "'MM', 'MM:SS', 'HH:MM:SS', 'D-HH', 'D-HH:MM', 'D-HH:MM:SS' (MM and SS below 60, HH "
    "below 24 after a day), or with units d/h/m/s like '90m', '45s', '2h', '1.5h', '1d', "
    "'1h30m', '1d12h'; seconds round up to whole minutes"
)
MEMORY_FORMS = (
    "expected a positive memory size: a number of GB (e.g. 16 or 0.5), or a string with a "
    "unit K, M, G or T (1G = 1024M) such as '2048K', '500M', '500MB', '16G', '16GB', "
    "'16GiB', '1.5G', '1T'"
)
_MEMORY_NEEDS_UNIT = (
    "a memory string needs a unit (M, G, T): Slurm reads a bare number as MB while paracore "
    "reads a bare number as GB, so write e.g. '16G' or '500M'. " + MEMORY_FORMS
)
_RSS_FORMS = (
    "expected a sacct size: a number of bytes, or a number with a suffix K, M, G, T or P "
    "(e.g. '102400K', '100M', '1.5G'), or '' for no value"
)
_ELAPSED_FORMS = (
    "expected a sacct duration 'MM:SS', 'HH:MM:SS' or 'D-HH:MM:SS' "
    "(MM and SS below 60, HH below 24 after a day; fractional seconds allowed)"
)

_MAX_TEXT = 64  # longer strings are never sensible here; also bounds int() conversion cost
_NUM = r"[0-9]+(?:\.[0-9]+)?"
_INT_PART = re.compile(r"[0-9]+", re.ASCII)
_SUFFIXED_TIME = re.compile(
    rf"(?:(?P<d>{_NUM})\s*d)?\s*(?:(?P<h>{_NUM})\s*h)?\s*"
    rf"(?:(?P<m>{_NUM})\s*m)?\s*(?:(?P<s>{_NUM})\s*s)?",
    re.ASCII,
)
_MEMORY = re.compile(rf"(?P<num>{_NUM})\s*(?P<unit>[kmgt])(?:i?b)?", re.ASCII)
_BARE_NUMBER = re.compile(_NUM, re.ASCII)
_RSS = re.compile(rf"(?P<num>{_NUM})(?P<unit>[kmgtp]?)", re.ASCII)
_ELAPSED = re.compile(
    r"(?:(?:(?P<d>[0-9]+)-)?(?P<h>[0-9]+):)?(?P<m>[0-9]+):(?P<s>[0-9]+(?:\.[0-9]+)?)",
    re.ASCII,
)

_SECONDS_PER = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_MB_PER = {"k": Fraction(1, 1024), "m": Fraction(1), "g": Fraction(1024), "t": Fraction(1024**2)}
_KIB_PER = {
    "": Fraction(1, 1024),
    "k": Fraction(1),
    "m": Fraction(1024),
    "g": Fraction(1024**2),
    "t": Fraction(1024**3),
    "p": Fraction(1024**4),
}
_MINUTES_PER_DAY = 24 * 60


def _colon_seconds(text: str) -> int | None:
    """Seconds for a Slurm ``--time`` colon/dash form, or None if ``text`` is not one."""
    days_text, dash, rest = text.partition("-")
    if not dash:
        days_text, rest = "", text
    parts = rest.split(":")
    if len(parts) > 3 or not all(_INT_PART.fullmatch(p) for p in parts):
        return None
    if dash and not _INT_PART.fullmatch(days_text):
        return None
    values = [int(p) for p in parts]
    if dash:
        # D-HH, D-HH:MM, D-HH:MM:SS
        hours, minutes, seconds = (*values, 0, 0)[:3]
        if hours >= 24 or minutes >= 60 or seconds >= 60:
            return None
        return ((int(days_text) * 24 + hours) * 60 + minutes) * 60 + seconds
    if len(values) == 1:  # MM
        return values[0] * 60
    if len(values) == 2:  # MM:SS
        minutes, seconds = values
        return None if seconds >= 60 else minutes * 60 + seconds
    hours, minutes, seconds = values  # HH:MM:SS
    if minutes >= 60 or seconds >= 60:
        return None
    return (hours * 60 + minutes) * 60 + seconds


def _suffixed_seconds(text: str) -> Fraction | None:
    """Seconds for a unit form like ``1d12h`` or ``1.5h``, or None if ``text`` is not one."""
    match = _SUFFIXED_TIME.fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        return None
    return sum(
        (
            Fraction(number) * _SECONDS_PER[unit]
            for unit, number in match.groupdict().items()
            if number is not None
        ),
        Fraction(0),
    )


def parse_walltime(value: int | str, *, field: str = "time", source: str | None = None) -> int:
    """Parse a walltime into whole minutes (seconds round up), accepting ints and Slurm forms.

    Raises SpecError naming ``field``, the value, ``source`` and the accepted forms.
    """
    if isinstance(value, bool):
        raise SpecError(field, value, WALLTIME_FORMS, source)
    if isinstance(value, int):
        if value <= 0:
            raise SpecError(field, value, WALLTIME_FORMS, source)
        return _plausible_minutes(value, value, field, source)
    if not isinstance(value, str):
        raise SpecError(field, value, WALLTIME_FORMS, source)
    text = value.strip().lower()
    if not text or len(text) > _MAX_TEXT:
        raise SpecError(field, value, WALLTIME_FORMS, source)
    seconds: int | Fraction | None = _colon_seconds(text)
    if seconds is None:
        seconds = _suffixed_seconds(text)
    if seconds is None:
        raise SpecError(field, value, WALLTIME_FORMS, source)
    minutes = math.ceil(Fraction(seconds) / 60)
    if minutes <= 0:
        raise SpecError(field, value, WALLTIME_FORMS, source)
    return _plausible_minutes(minutes, value, field, source)


def _plausible_minutes(minutes: int, value: object, field: str, source: str | None) -> int:
    if minutes > MAX_TIME_MIN:
        raise SpecError(
            field,
            value,
            f"at most a year ({MAX_TIME_MIN} minutes): no partition allows more",
            source,
        )
    return minutes


def _plausible_mb(mb: int, value: object, field: str, source: str | None) -> int:
    if mb > MAX_MEM_MB:
        raise SpecError(field, value, "at most 1 PB (1024T): no node has more memory", source)
    return mb


def format_walltime(minutes: int) -> str:
    """Format positive minutes in Slurm's form: ``D-HH:MM:SS`` from one day on, else ``HH:MM:SS``.

    ``parse_walltime(format_walltime(m)) == m`` for every positive int ``m``.
    """
    if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes <= 0:
        raise SpecError("time", minutes, "expected a positive int number of minutes")
    days, rest = divmod(minutes, _MINUTES_PER_DAY)
    hours, mins = divmod(rest, 60)
    clock = f"{hours:02d}:{mins:02d}:00"
    return f"{days}-{clock}" if days else clock


def parse_memory(value: int | float | str, *, field: str = "mem", source: str | None = None) -> int:
    """Parse a memory size into whole MB (MiB, rounded up): numbers are GB, strings need a unit.

    Unit-less strings are refused because Slurm reads them as MB but paracore numbers as GB.
    """
    if isinstance(value, bool):
        raise SpecError(field, value, MEMORY_FORMS, source)
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise SpecError(field, value, MEMORY_FORMS, source)
        return _plausible_mb(math.ceil(Fraction(value) * 1024), value, field, source)
    if not isinstance(value, str):
        raise SpecError(field, value, MEMORY_FORMS, source)
    text = value.strip().lower()
    if len(text) > _MAX_TEXT:
        raise SpecError(field, value, MEMORY_FORMS, source)
    if _BARE_NUMBER.fullmatch(text):
        raise SpecError(field, value, _MEMORY_NEEDS_UNIT, source)
    match = _MEMORY.fullmatch(text)
    if match is None:
        raise SpecError(field, value, MEMORY_FORMS, source)
    mb = math.ceil(Fraction(match["num"]) * _MB_PER[match["unit"]])
    if mb <= 0:
        raise SpecError(field, value, MEMORY_FORMS, source)
    return _plausible_mb(mb, value, field, source)


def format_memory(mb: int) -> str:
    """Format positive MB as the shortest exact Slurm size: ``1T``, ``16G`` or ``500M``.

    ``parse_memory(format_memory(mb)) == mb`` for every positive int ``mb``.
    """
    if isinstance(mb, bool) or not isinstance(mb, int) or mb <= 0:
        raise SpecError("mem", mb, "expected a positive int number of MB")
    if mb % (1024 * 1024) == 0:
        return f"{mb // (1024 * 1024)}T"
    if mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"


def mb_to_gb(mb: int) -> float:
    """Convert MB to GB (1G = 1024M), e.g. for submitit's ``mem_gb``."""
    return mb / 1024


def parse_rss(value: str, *, field: str = "MaxRSS") -> int | None:
    """Parse a sacct size (e.g. MaxRSS ``102400K``) into whole KiB, rounded up; ``''`` gives None.

    A bare number is bytes; suffixes K, M, G, T, P are powers of 1024 (case-insensitive).
    """
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise SpecError(field, value, _RSS_FORMS)
    text = value.strip().lower()
    if not text:
        return None
    match = _RSS.fullmatch(text)
    if match is None:
        raise SpecError(field, value, _RSS_FORMS)
    return math.ceil(Fraction(match["num"]) * _KIB_PER[match["unit"]])


def parse_elapsed(value: str, *, field: str = "Elapsed") -> int:
    """Parse a sacct duration (``MM:SS``, ``HH:MM:SS``, ``D-HH:MM:SS``) into whole seconds.

    Fractional seconds (as in TotalCPU) round up; zero is allowed.
    """
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise SpecError(field, value, _ELAPSED_FORMS)
    match = _ELAPSED.fullmatch(value.strip())
    if match is None:
        raise SpecError(field, value, _ELAPSED_FORMS)
    days, hours = match["d"], match["h"]
    minutes, seconds = int(match["m"]), Fraction(match["s"])
    if seconds >= 60 or (hours is not None and minutes >= 60):
        raise SpecError(field, value, _ELAPSED_FORMS)
    if days is not None and int(hours) >= 24:
        raise SpecError(field, value, _ELAPSED_FORMS)
    total = ((int(days or 0) * 24 + int(hours or 0)) * 60 + minutes) * 60 + seconds
    return math.ceil(total)


def int_or_none(text: str | None) -> int | None:
    """An int from a scheduler's text; None when absent or not a whole number."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
