"""Tests for paracore.core.names: sanitising laws, truncation with hashes, templates."""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from paracore.core.names import ALLOWED_PATTERN, render_name, sanitize, template_fields
from paracore.errors import SpecError
from tests.strategies import any_text_names, job_names

ALLOWED = re.compile(ALLOWED_PATTERN)
max_lens = st.integers(min_value=16, max_value=200)

# --- sanitize: laws -----------------------------------------------------------------------


@given(any_text_names(), max_lens)
def test_sanitize_output_is_valid(name: str, max_len: int) -> None:
    """Every output matches ALLOWED_PATTERN and fits in max_len."""
    out = sanitize(name, max_len)
    assert ALLOWED.fullmatch(out)
    assert len(out) <= max_len


@given(any_text_names(), max_lens)
def test_sanitize_is_idempotent(name: str, max_len: int) -> None:
    """Sanitising twice is the same as sanitising once."""
    once = sanitize(name, max_len)
    assert sanitize(once, max_len) == once


@given(job_names(max_len=80))
def test_sanitize_keeps_valid_names(name: str) -> None:
    """A valid name within max_len comes back unchanged."""
    assert sanitize(name) == name


@given(st.text(min_size=1), st.text(min_size=1), st.integers(16, 40))
def test_sanitize_truncated_names_stay_distinct(a: str, b: str, max_len: int) -> None:
    """Two distinct long inputs that share a prefix still give distinct outputs."""
    assume(a != b)
    prefix = "x" * (max_len + 10)
    out_a, out_b = sanitize(prefix + a, max_len), sanitize(prefix + b, max_len)
    assert out_a != out_b
    assert len(out_a) <= max_len
    assert len(out_b) <= max_len


@given(any_text_names(), max_lens)
def test_sanitize_is_deterministic(name: str, max_len: int) -> None:
    """The same input always gives the same output (the hash is stable)."""
    assert sanitize(name, max_len) == sanitize(name, max_len)


@given(job_names(max_len=50), st.text(alphabet="ab._-", min_size=201, max_size=300), max_lens)
def test_sanitize_truncation_keeps_a_prefix(base: str, tail: str, max_len: int) -> None:
    """A too-long valid name is cut to a prefix of itself plus a dash and 8 hex chars."""
    name = base + tail
    out = sanitize(name, max_len)
    head, _, digest = out.rpartition("-")
    assert re.fullmatch(r"[0-9a-f]{8}", digest)
    assert name.startswith(head)


# --- sanitize: examples -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("my job/1", "my-job-1"),
        ("train", "train"),
        ("a--b", "a--b"),
        ("run.v2_final-", "run.v2_final-"),
        ("  spaced  out  ", "spaced-out"),
        ("../../etc/passwd", "etc-passwd"),
        ("100% done", "100-done"),
        ('it\'s "quoted"', "it-s-quoted"),
        ("-leading", "leading"),
        ("_.-x", "x"),
        ("trailing/", "trailing"),
        ("trailing .", "trailing"),
        ("a//b\\\\c", "a-b-c"),
        ("café", "cafe"),
        ("\uff26\uff55\uff4c\uff4c", "Full"),
        ("🚀 launch 🚀", "launch"),
        ("🚀", "job"),
        ("", "job"),
        ("///", "job"),
        ("日本語", "job"),
        ("tab\tand\nnewline", "tab-and-newline"),
    ],
)
def test_sanitize_examples(name: str, expected: str) -> None:
    """Disallowed runs become one dash, ends are tidied, accents are folded, empty -> 'job'."""
    assert sanitize(name) == expected


def test_sanitize_long_name_gets_hash_suffix() -> None:
    """A long name is cut to max_len with a stable 8-hex hash of the original appended."""
    name = "experiment-" + "a" * 200
    out = sanitize(name, 40)
    assert len(out) == 40
    assert re.fullmatch(r"experiment-a{20}-[0-9a-f]{8}", out)
    assert sanitize(name, 40) == out
    assert sanitize(name + "b", 40) != out


def test_sanitize_hash_is_of_original_input() -> None:
    """Inputs that clean to the same long text still differ after truncation."""
    a, b = "x" * 100 + " y", "x" * 100 + "/y"
    assert sanitize(a, 50) != sanitize(b, 50)


def test_sanitize_cut_does_not_leave_separator_before_hash() -> None:
    """The cut prefix drops trailing separators so the hash follows exactly one dash."""
    out = sanitize("a" * 6 + "." * 3 + "b" * 100, 16)
    assert re.fullmatch(r"a{6}-[0-9a-f]{8}", out)


@pytest.mark.parametrize("max_len", [15, 0, -1])
def test_sanitize_rejects_small_max_len(max_len: int) -> None:
    """max_len below 16 leaves no room for a hash and raises SpecError."""
    with pytest.raises(SpecError, match=r"^max_len="):
        sanitize("name", max_len)


# --- template_fields / render_name --------------------------------------------------------


def test_template_fields_lists_names_in_order() -> None:
    """Placeholder names come back in first-use order without duplicates."""
    template = "{project}-{cluster}-{partition}-{project}.{run_id}{{x}}"
    assert template_fields(template) == ("project", "cluster", "partition", "run_id")
    assert template_fields("plain") == ()


@pytest.mark.parametrize(
    "template",
    [
        "{project",
        "project}",
        "{}",
        "{0}",
        "{1}-{project}",
        "{a.b}",
        "{a[0]}",
        "{project!r}",
        "{project:>10}",
        "{ project }",
        "{a{b}}",
        "{{{",
    ],
)
def test_template_fields_rejects_malformed(template: str) -> None:
    """Unbalanced braces, positional fields, attribute/index access and specs raise SpecError."""
    with pytest.raises(SpecError) as info:
        template_fields(template)
    assert info.value.field == "naming.default_job_name"
    assert info.value.value == template


def test_render_name_rejects_with_custom_field() -> None:
    """render_name reports errors against the field it was given."""
    with pytest.raises(SpecError, match=r"^profiles\.gpu\.job_name='\{\}-x': "):
        render_name("{}-x", {}, field="profiles.gpu.job_name")


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"project": "demo", "cluster": "hpc1", "partition": "gpu"}, "demo-hpc1-gpu"),
        ({"project": "demo"}, "demo"),
        ({"cluster": "hpc1"}, "hpc1"),
        ({"project": "demo", "partition": "gpu"}, "demo-gpu"),
        ({"project": "demo", "cluster": None, "partition": "gpu"}, "demo-gpu"),
        ({"project": "demo", "cluster": ""}, "demo"),
        ({}, "job"),
        ({"project": "my project", "cluster": "a/b", "partition": "x"}, "my-project-a-b-x"),
    ],
)
def test_render_name_examples(tags: dict[str, str | None], expected: str) -> None:
    """Tags fill placeholders; missing or None tags drop out with their separators."""
    assert render_name("{project}-{cluster}-{partition}", tags) == expected


def test_render_name_custom_tags_and_literals() -> None:
    """Custom tags and literal text render; unused tags are ignored."""
    tags = {"project": "demo", "env": "prod", "step": "train", "unused": "zzz"}
    assert render_name("{project}.{env}_{step}-v2", tags) == "demo.prod_train-v2"
    assert render_name("{project}.{missing}_{step}", tags) == "demo.train"
    assert render_name("run-{{literal}}-{env}", tags) == "run-literal-prod"


def test_render_name_truncates_with_hash() -> None:
    """Rendered names obey max_len via sanitize's hashed truncation."""
    out = render_name("{project}-{env}", {"project": "p" * 100, "env": "dev"}, max_len=30)
    assert len(out) <= 30
    assert ALLOWED.fullmatch(out)
    assert out != render_name("{project}-{env}", {"project": "p" * 100, "env": "prd"}, max_len=30)


@given(
    st.dictionaries(
        st.sampled_from(["project", "cluster", "partition", "env"]),
        st.one_of(st.none(), any_text_names()),
    ),
    max_lens,
)
def test_render_name_output_is_valid(tags: dict[str, str | None], max_len: int) -> None:
    """Whatever the tags, the rendered name is valid, within max_len and idempotent."""
    out = render_name("{project}-{cluster}-{partition}.{env}", tags, max_len)
    assert ALLOWED.fullmatch(out)
    assert len(out) <= max_len
    assert sanitize(out, max_len) == out
