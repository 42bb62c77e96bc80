"""What may reach a batch script, a job's environment or the scheduler (pure predicates).

Anything a user gives that ends up in the sbatch script (``extra`` options, log paths) must be
one line with no control characters, and option names must be plain sbatch option names, so
no value can add ``#SBATCH`` lines or shell commands. Environment variable names follow the
shell's rule; values carry no NUL. Sizes and walltimes beyond any real machine are refused.
"""

from __future__ import annotations

import re

__all__ = [
    "ENV_NAME",
    "MAX_CPUS",
    "MAX_GPUS",
    "MAX_MEM_MB",
    "MAX_TIME_MIN",
    "SBATCH_OPTION",
    "control_characters",
    "is_env_name",
    "is_sbatch_option",
    "single_line",
]

SBATCH_OPTION = r"[a-z][a-z0-9-]*"
"""An sbatch long option name without its dashes: ``constraint``, ``mail-type``."""
ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
"""An environment variable name the shell accepts."""
MAX_MEM_MB = 1024**3
"""1 PB in MB: more memory than any node has."""
MAX_TIME_MIN = 366 * 24 * 60
"""A year in minutes: longer than any partition allows."""
MAX_CPUS = 100_000
"""More CPUs than any node has."""
MAX_GPUS = 1024
"""More GPUs than any node has."""

_SBATCH_OPTION = re.compile(SBATCH_OPTION, re.ASCII)
_ENV_NAME = re.compile(ENV_NAME, re.ASCII)


def control_characters(text: str) -> list[str]:
    """The control characters in ``text`` (newlines, tabs, NUL, escape, ...), as reprs."""
    return [repr(c) for c in text if ord(c) < 32 or ord(c) == 127]


def single_line(text: str) -> bool:
    """True when ``text`` has no control characters (so no newline can start a new line)."""
    return not control_characters(text)


def is_sbatch_option(name: str) -> bool:
    """True for a plain sbatch long option name (lowercase, digits and dashes)."""
    return _SBATCH_OPTION.fullmatch(name) is not None


def is_env_name(name: str) -> bool:
    """True for a name the shell accepts as an environment variable."""
    return _ENV_NAME.fullmatch(name) is not None
