"""Per-submission choices, settled once: re-attach or not, validate or not, where values came
from (pure).

Every entry point (``submit``, the convenience API, maps, the Pool, plans and spec files)
settles one :class:`SubmitOptions` from its keywords and the configuration, and hands it down;
nothing below reads a keyword or a configuration file for these choices again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from paracore.core.config import RESUME_MODES
from paracore.errors import SpecError

__all__ = ["SubmitOptions", "check_resume"]


def _origin_pairs(
    value: Mapping[str, str] | tuple[tuple[str, str], ...] | None,
) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    items = value.items() if isinstance(value, Mapping) else value
    return tuple(sorted((str(k), str(v)) for k, v in items))


def check_resume(value: object, source: str = "resume") -> str:
    """The resume mode, or a SpecError naming what is accepted and where ``value`` came from."""
    if value not in RESUME_MODES:
        raise SpecError("resume", value, "'auto', 'cache' or 'never'", source)
    return str(value)


def _resume_mode(_inst: object, _attr: attrs.Attribute[Any], value: object) -> None:
    check_resume(value)


@attrs.frozen(kw_only=True)
class SubmitOptions:
    """How one submission treats earlier work and checks: ``resume`` (``auto``: re-attach to
    identical work recorded earlier; ``cache``: also re-use finished results; ``never``),
    ``validate`` (None: the configuration and ``$PARACORE_VALIDATE`` decide), ``origins``
    (flat key -> where its value came from, quoted by errors), ``store`` (the run store's
    folder; None: the session's default)."""

    resume: str = attrs.field(default="auto", validator=_resume_mode)
    validate: bool | None = None
    origins: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_origin_pairs)
    store: str | None = None

    @property
    def origin_of(self) -> dict[str, str]:
        """``origins`` as a mapping (flat key -> where its value came from)."""
        return dict(self.origins)

    def for_dependent(self) -> SubmitOptions:
        """The options for work that waits on other jobs: never re-attached (its parents may
        differ from the recorded run's)."""
        return self if self.resume == "never" else attrs.evolve(self, resume="never")
