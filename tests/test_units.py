"""Tests for paracore.core.units: walltime and memory parsing/formatting, sacct readers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paracore.core.units import (
    format_memory,
    format_walltime,
    mb_to_gb,
    parse_elapsed,
    parse_memory,
    parse_rss,
    parse_walltime,
)
from paracore.errors import ParacoreError, SpecError
from tests.strategies import MAX_WALLTIME_MINUTES, memory_mb, walltime_minutes

# --- parse_walltime: examples -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        (1, 1),
        (90, 90),
        ("90", 90),
        ("5000", 5000),
        ("10:30", 11),
        ("10:00", 10),
        ("0:01", 1),
        ("75:00", 75),
        ("01:30:00", 90),
        ("1:00:01", 61),
        ("48:00:00", 2880),
        ("1-0", 1440),
        ("2-12", 3600),
        ("1-02:30", 1590),
        ("1-00:00:30", 1441),
        ("0-00:05:00", 5),
        ("90m", 90),
        ("45s", 1),
        ("61s", 2),
        ("2h", 120),
        ("1d", 1440),
        ("1.5h", 90),
        ("0.5m", 1),
        ("1h30m", 90),
        ("1d12h", 2160),
        ("1d2h3m4s", 1564),
        ("1H30M", 90),
        ("  2h  ", 120),
        ("1h 30m", 90),
        ("0h5m", 5),
    ],
)
def test_parse_walltime_accepts(value: int | str, minutes: int) -> None:
    """Every documented walltime form parses to the expected whole minutes."""
    assert parse_walltime(value) == minutes


@pytest.mark.parametrize(
    "value",
    [
        0,
        -5,
        True,
        False,
        1.5,
        None,
        "",
        "   ",
        "0",
        "00:00",
        "0:00:00",
        "0-00",
        "0s",
        "0h0m",
        "-5",
        "-1h",
        "abc",
        "1:60",
        "1:60:00",
        "1:00:60",
        "1-24",
        "1-23:60",
        "1-23:59:60",
        "1:2:3:4",
        "1-2-3",
        "1-",
        "-1",
        ":30",
        "1:",
        "1h30",
        "30m1h",
        "1x",
        "h",
        "1.5",
        ".5h",
        "1e3m",
        "\u0661\u0662",
        "1" * 100,
    ],
)
def test_parse_walltime_rejects(value: object) -> None:
    """Invalid, zero, negative and out-of-range walltimes raise SpecError."""
    with pytest.raises(SpecError):
        parse_walltime(value)  # type: ignore[arg-type]


def test_walltime_error_names_field_value_source_and_forms() -> None:
    """The error message carries the field, the value, the source and the accepted forms."""
    with pytest.raises(SpecError) as info:
        parse_walltime("1:75", field="resources.time", source="paracore.yaml")
    err = info.value
    assert isinstance(err, ValueError)
    assert isinstance(err, ParacoreError)
    assert (err.field, err.value, err.source) == ("resources.time", "1:75", "paracore.yaml")
    message = str(err)
    assert message.startswith("resources.time='1:75' (from paracore.yaml): ")
    for form in ("HH:MM:SS", "D-HH:MM:SS", "90m", "1.5h", "1d12h"):
        assert form in message


def test_walltime_error_without_source() -> None:
    """Without a source the message omits the '(from ...)' part."""
    with pytest.raises(SpecError, match=r"^time=-3: "):
        parse_walltime(-3)


# --- parse_walltime / format_walltime: properties -----------------------------------------


@given(walltime_minutes())
def test_walltime_round_trip(minutes: int) -> None:
    """Formatting then parsing a walltime gives the same minutes back."""
    assert parse_walltime(format_walltime(minutes)) == minutes


@given(walltime_minutes())
def test_walltime_int_and_plain_strings(minutes: int) -> None:
    """Ints, 'MM' strings and 'Nm' strings all mean minutes."""
    assert parse_walltime(minutes) == minutes
    assert parse_walltime(str(minutes)) == minutes
    assert parse_walltime(f"{minutes}m") == minutes
    assert parse_walltime(f"{minutes * 60}s") == minutes


@given(st.integers(1, 10_000))
def test_walltime_seconds_round_up(seconds: int) -> None:
    """Seconds round up to whole minutes in both suffixed and colon forms."""
    expected = -(-seconds // 60)
    assert parse_walltime(f"{seconds}s") == expected
    assert parse_walltime(f"{seconds // 60}:{seconds % 60:02d}") == expected


@given(st.integers(0, 365), st.integers(0, 23), st.integers(0, 59), st.integers(0, 59))
def test_walltime_day_forms(days: int, hours: int, mins: int, secs: int) -> None:
    """The D-HH, D-HH:MM and D-HH:MM:SS forms match the arithmetic."""
    base = (days * 24 + hours) * 60
    if base > 0:
        assert parse_walltime(f"{days}-{hours:02d}") == base
    if base + mins > 0:
        assert parse_walltime(f"{days}-{hours:02d}:{mins:02d}") == base + mins
    if base + mins + secs > 0:
        expected = base + mins + (1 if secs else 0)
        assert parse_walltime(f"{days}-{hours}:{mins:02d}:{secs:02d}") == expected


@given(st.integers(0, 500), st.integers(0, 500), st.integers(0, 500))
def test_walltime_suffix_combinations(days: int, hours: int, mins: int) -> None:
    """Combined unit forms like '1d2h3m' add up, and '{h}h' is hours times sixty."""
    total = days * 1440 + hours * 60 + mins
    if 0 < total <= MAX_WALLTIME_MINUTES:
        assert parse_walltime(f"{days}d{hours}h{mins}m") == total
    if hours > 0:
        assert parse_walltime(f"{hours}h") == hours * 60
        assert parse_walltime(f"{hours}:00:00") == hours * 60


@given(walltime_minutes(), walltime_minutes())
def test_walltime_monotone(a: int, b: int) -> None:
    """A string with more minutes never parses to fewer minutes."""
    lo, hi = sorted((a, b))
    assert parse_walltime(format_walltime(lo)) <= parse_walltime(format_walltime(hi))
    assert parse_walltime(f"{lo}m") <= parse_walltime(f"{hi}m")


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (1, "00:01:00"),
        (90, "01:30:00"),
        (1439, "23:59:00"),
        (1440, "1-00:00:00"),
        (2160, "1-12:00:00"),
        (14400, "10-00:00:00"),
    ],
)
def test_format_walltime_examples(minutes: int, text: str) -> None:
    """format_walltime uses HH:MM:SS under a day and D-HH:MM:SS from a day on."""
    assert format_walltime(minutes) == text


@pytest.mark.parametrize("minutes", [0, -1, True])
def test_format_walltime_rejects_non_positive(minutes: int) -> None:
    """format_walltime refuses values that parse_walltime would refuse."""
    with pytest.raises(SpecError):
        format_walltime(minutes)


# --- parse_memory: examples ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mb"),
    [
        (16, 16384),
        (0.5, 512),
        (1.5, 1536),
        (0.0001, 1),
        ("500M", 500),
        ("500MB", 500),
        ("500mb", 500),
        ("500MiB", 500),
        ("16G", 16384),
        ("16GB", 16384),
        ("16GiB", 16384),
        ("16g", 16384),
        (" 16 G ", 16384),
        ("1.5G", 1536),
        ("1T", 1048576),
        ("0.5T", 524288),
        ("2048K", 2),
        ("2049K", 3),
        ("1K", 1),
        ("0.1M", 1),
    ],
)
def test_parse_memory_accepts(value: int | float | str, mb: int) -> None:
    """Numbers are GB and unit strings are K/M/G/T (1G = 1024M), rounded up to whole MB."""
    assert parse_memory(value) == mb


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        0.0,
        -0.5,
        True,
        False,
        None,
        float("nan"),
        float("inf"),
        "",
        "0M",
        "0G",
        "-1G",
        "G",
        "16X",
        "16 gigs",
        "1e3M",
        "16B",
        "1.G",
        "16GBB",
        "16 G B",
        "\u0661\u0666G",
    ],
)
def test_parse_memory_rejects(value: object) -> None:
    """Non-positive, non-finite, boolean and garbage memory values raise SpecError."""
    with pytest.raises(SpecError):
        parse_memory(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["16", "1.5", " 500 "])
def test_parse_memory_bare_string_needs_unit(value: str) -> None:
    """A unit-less string is ambiguous (Slurm: MB, paracore numbers: GB) and asks for a unit."""
    with pytest.raises(SpecError, match=r"needs a unit \(M, G, T\)"):
        parse_memory(value)


def test_memory_error_names_field_value_source_and_forms() -> None:
    """The memory error carries the field, the value, the source and the accepted forms."""
    with pytest.raises(ValueError) as info:
        parse_memory("lots", field="resources.mem", source="CLI --mem")
    message = str(info.value)
    assert message.startswith("resources.mem='lots' (from CLI --mem): ")
    for form in ("500M", "16G", "1T", "1.5G"):
        assert form in message


# --- parse_memory / format_memory: properties ---------------------------------------------


@given(memory_mb())
def test_memory_round_trip(mb: int) -> None:
    """Formatting then parsing a memory size gives the same MB back."""
    assert parse_memory(format_memory(mb)) == mb


@given(memory_mb())
def test_format_memory_is_shortest_exact(mb: int) -> None:
    """format_memory picks the largest unit that represents the size exactly."""
    text = format_memory(mb)
    number, unit = int(text[:-1]), text[-1]
    assert unit in "MGT"
    if unit == "M":
        assert mb % 1024 != 0
    if unit == "G":
        assert mb % (1024 * 1024) != 0
    assert number * {"M": 1, "G": 1024, "T": 1024**2}[unit] == mb


@given(st.integers(1, 1024))
def test_memory_units_scale(n: int) -> None:
    """N M, N G, N T and the number N agree with the 1024 arithmetic."""
    assert parse_memory(f"{n}M") == n
    assert parse_memory(f"{n}G") == parse_memory(n) == n * 1024
    assert parse_memory(f"{n}T") == n * 1024**2
    assert parse_memory(f"{n}K") == -(-n // 1024)


@given(st.integers(1, 10**6), st.integers(1, 10**6))
def test_memory_monotone(a: int, b: int) -> None:
    """A larger memory string never parses to fewer MB."""
    lo, hi = sorted((a, b))
    assert parse_memory(f"{lo}K") <= parse_memory(f"{hi}K")
    assert parse_memory(f"{lo}M") <= parse_memory(f"{hi}M")


def test_format_memory_examples() -> None:
    """format_memory prefers T, then G, then M."""
    assert [format_memory(m) for m in (500, 1024, 16384, 1536, 1048576, 3 * 1048576 + 1024)] == [
        "500M",
        "1G",
        "16G",
        "1536M",
        "1T",
        "3073G",
    ]


@pytest.mark.parametrize("mb", [0, -1, True])
def test_format_memory_rejects_non_positive(mb: int) -> None:
    """format_memory refuses values that parse_memory would refuse."""
    with pytest.raises(SpecError):
        format_memory(mb)


def test_mb_to_gb() -> None:
    """mb_to_gb divides by 1024."""
    assert mb_to_gb(16384) == 16.0
    assert mb_to_gb(512) == 0.5


@given(memory_mb())
def test_mb_to_gb_inverts_number_parsing(mb: int) -> None:
    """Feeding mb_to_gb's result back as a GB number recovers the MB."""
    assert parse_memory(mb_to_gb(mb)) == mb


# --- sacct readers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kib"),
    [
        ("102400K", 102400),
        ("100M", 102400),
        ("1.5G", 1572864),
        ("1T", 1024**3),
        ("1P", 1024**4),
        ("0", 0),
        ("0K", 0),
        ("2048", 2),
        ("123456", 121),
        ("1", 1),
        ("16.50M", 16896),
        (" 100m ", 102400),
    ],
)
def test_parse_rss_accepts(value: str, kib: int) -> None:
    """sacct sizes parse to whole KiB (bare numbers are bytes, rounded up)."""
    assert parse_rss(value) == kib


@pytest.mark.parametrize("value", ["", "   "])
def test_parse_rss_empty_is_none(value: str) -> None:
    """An empty sacct field means no measurement, i.e. None."""
    assert parse_rss(value) is None


@pytest.mark.parametrize("value", ["-1K", "abc", "1X", "K", "1.5.5M", "1 0K"])
def test_parse_rss_rejects(value: str) -> None:
    """Garbage sacct sizes raise SpecError naming MaxRSS."""
    with pytest.raises(SpecError, match=r"^MaxRSS="):
        parse_rss(value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("00:00:00", 0),
        ("00:00", 0),
        ("05:30", 330),
        ("01:02:03", 3723),
        ("1-00:00:00", 86400),
        ("2-03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("00:01.500", 2),
        (" 00:10:00 ", 600),
    ],
)
def test_parse_elapsed_accepts(value: str, seconds: int) -> None:
    """sacct durations parse to whole seconds (fractions round up)."""
    assert parse_elapsed(value) == seconds


@pytest.mark.parametrize(
    "value", ["", "INVALID", "5", "1-05", "1-05:00", "00:60", "00:60:00", "1-24:00:00", "-1:00"]
)
def test_parse_elapsed_rejects(value: str) -> None:
    """Malformed or out-of-range sacct durations raise SpecError naming Elapsed."""
    with pytest.raises(SpecError, match=r"^Elapsed="):
        parse_elapsed(value)


@given(st.integers(0, 400 * 86400))
def test_parse_elapsed_matches_arithmetic(total: int) -> None:
    """D-HH:MM:SS built from a number of seconds parses back to that number."""
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    mins, secs = divmod(rest, 60)
    assert parse_elapsed(f"{days}-{hours:02d}:{mins:02d}:{secs:02d}") == total
    assert parse_elapsed(f"{days * 24 + hours:02d}:{mins:02d}:{secs:02d}") == total


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (parse_memory, 1e9),
        (parse_memory, "1025T"),
        (parse_memory, "2000000G"),
        (parse_walltime, "367d"),
        (parse_walltime, 10**7),
        (parse_walltime, "400-00:00:00"),
    ],
)
def test_absurd_sizes_and_walltimes_are_refused(parse, value) -> None:
    """Beyond 1 PB or a year no machine or partition fits: refused before any cluster check."""
    with pytest.raises(SpecError, match=r"at most (1 PB|a year)") as info:
        parse(value, field="mem_gb", source="call")
    assert "(from call)" in str(info.value)


def test_the_largest_plausible_values_parse() -> None:
    """Exactly 1 PB and exactly a year are still accepted."""
    assert parse_memory("1024T") == 1024**3
    assert parse_walltime("366-00:00:00") == 366 * 24 * 60
