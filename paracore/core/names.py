"""Job names: template rendering, sanitising and stable truncation (pure functions, no I/O).

A *valid* name matches ``ALLOWED_PATTERN``: ASCII letters, digits, ``.``, ``_`` and ``-``,
starting with a letter or digit. Such names are safe as Slurm job names and as file names.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping

from paracore.core.digest import stable_digest
from paracore.core.spec import Naming
from paracore.errors import SpecError

__all__ = [
    "ALLOWED_PATTERN",
    "MIN_MAX_LEN",
    "render_job_name",
    "render_name",
    "sanitize",
    "template_fields",
]

ALLOWED_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MIN_MAX_LEN = 16
DEFAULT_TEMPLATE_FIELD = "naming.default_job_name"

_ALLOWED = re.compile(ALLOWED_PATTERN, re.ASCII)
_DISALLOWED_RUN = re.compile(r"[^A-Za-z0-9._-]+", re.ASCII)
_DASH_RUN = re.compile(r"-{2,}")
_SEPARATOR_RUN = re.compile(r"([._-])[._-]*")
_SEPARATORS = "._-"
_HASH_LEN = 8
_TEMPLATE_FORMS = (
    "expected a template of literal text and named placeholders such as "
    "'{project}-{cluster}-{partition}' (braces balanced, '{{' and '}}' for literal braces; "
    "no positional '{}'/'{0}', attribute or index access, conversions or format specs)"
)


def _clean(name: str) -> str:
    """Map ``name`` to a valid name without regard to length (``job`` if nothing is left)."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_ish = "".join(c for c in decomposed if not unicodedata.combining(c))
    cleaned = _DASH_RUN.sub("-", _DISALLOWED_RUN.sub("-", ascii_ish))
    cleaned = cleaned.lstrip(_SEPARATORS).rstrip(_SEPARATORS)
    return cleaned or "job"


def sanitize(name: str, max_len: int = 80) -> str:
    """Turn any text into a valid job name of at most ``max_len`` chars; valid names pass as is.

    Over-long names are cut (a valid one to a prefix of itself) and suffixed with
    ``-`` and 8 hex chars of a hash of the original input, so distinct inputs stay distinct.
    """
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < MIN_MAX_LEN:
        raise SpecError("max_len", max_len, f"expected an int of at least {MIN_MAX_LEN}")
    valid = _ALLOWED.fullmatch(name) is not None
    if valid and len(name) <= max_len:
        return name
    cleaned = name if valid else _clean(name)
    if len(cleaned) <= max_len:
        return cleaned
    prefix = cleaned[: max_len - _HASH_LEN - 1].rstrip(_SEPARATORS)
    return f"{prefix}-{stable_digest(name, _HASH_LEN)}"


def template_fields(template: str, *, field: str = DEFAULT_TEMPLATE_FIELD) -> tuple[str, ...]:
    """Return the distinct placeholder names of a job-name template, in order of first use.

    Raises SpecError (for ``field``) if the template is malformed or uses unsupported syntax.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except (ValueError, TypeError, AttributeError):
        raise SpecError(field, template, _TEMPLATE_FORMS) from None
    names: list[str] = []
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise SpecError(field, template, _TEMPLATE_FORMS)
        if name not in names:
            names.append(name)
    return tuple(names)


def render_name(
    template: str,
    tags: Mapping[str, str | None],
    max_len: int = 80,
    *,
    field: str = DEFAULT_TEMPLATE_FIELD,
) -> str:
    """Fill a template like ``{project}-{cluster}`` from ``tags`` and sanitise the result.

    Missing or None tags render empty; then every run of separators (``.``, ``_``, ``-``) is
    reduced to its first character and separators at either end are dropped, so
    ``{project}-{cluster}-{partition}`` with only ``project="demo"`` gives ``demo``.
    """
    template_fields(template, field=field)
    pieces: list[str] = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        pieces.append(literal)
        if name is not None:
            tag = tags.get(name)
            pieces.append("" if tag is None else str(tag))
    rendered = _SEPARATOR_RUN.sub(r"\1", "".join(pieces)).strip(_SEPARATORS)
    return sanitize(rendered, max_len)


# ---------------------------------------------------------------- the name of a spec


def render_job_name(naming: Naming, tags: Mapping[str, str], label: str) -> str:
    """The sanitised name Slurm will show: explicit name, else template, else ``label`` (the
    payload's); ``naming.max_len`` must be set (the built-in defaults set it)."""
    max_len = naming.max_len if isinstance(naming.max_len, int) else 80
    if isinstance(naming.job_name, str):
        return sanitize(naming.job_name, max_len)
    template = naming.template
    if isinstance(template, str) and (
        any(tags.get(field) for field in template_fields(template))
        or any(c.isalnum() for c in _literal_text(template))
    ):
        return render_name(template, tags, max_len)
    return sanitize(label, max_len)


def _literal_text(template: str) -> str:
    """The template's own text, placeholders left out."""
    return "".join(literal for literal, *_ in string.Formatter().parse(template))
