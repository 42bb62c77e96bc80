"""The task's environment, made inside the job at run time (standard library only).

Applying the environment policy on the node, not at submit time, keeps the job's own
``SLURM_*`` variables even when the environment is replaced.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping

__all__ = [
    "KEPT_PREFIXES",
    "SetupFailed",
    "applied_environment",
    "compose_environment",
    "run_setup",
]

KEPT_PREFIXES = ("SLURM_", "SUBMITIT_")
"""Variables a replaced environment keeps, so the task still knows where and what it is."""
SETUP_TAIL_CHARS = 4000
# bash's own bookkeeping variables: never part of what a setup line meant to change
_BASH_OWN = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})


class SetupFailed(RuntimeError):
    """Raised inside the job when the ``env_setup`` line fails."""


def compose_environment(
    current: Mapping[str, str],
    merge: str,
    overlay: Mapping[str, str],
    setup_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The task's environment: inherited or replaced, then the setup's changes, then the overlay.

    With ``merge="replace"`` only the job's own ``SLURM_*``/``SUBMITIT_*`` variables survive.
    """
    if merge == "replace":
        base = {k: v for k, v in current.items() if k.startswith(KEPT_PREFIXES)}
    else:
        base = dict(current)
    if setup_env is not None:
        # Only what the setup line changed: it ran in the full environment, so everything
        # else it reports is inherited and must not come back under "replace".
        base.update({k: v for k, v in setup_env.items() if current.get(k) != v})
        for key in current.keys() - setup_env.keys() - _BASH_OWN:
            base.pop(key, None)  # the setup line unset it
    base.update(overlay)
    return base


def run_setup(setup: str, env: Mapping[str, str]) -> dict[str, str]:
    """Run the setup line(s) in bash and return the environment they leave behind.

    The lines run with ``set -e``: the first command that fails ends the setup (and the task)
    with its exit status, not only a failing last line.
    """
    marker = "__PARACORE_ENV__"
    script = f"set -e\n{setup}\nset +e\necho {marker}\nenv -0"
    proc = subprocess.run(["bash", "-c", script], env=dict(env), capture_output=True, check=False)
    out = proc.stdout
    if proc.returncode != 0 or marker.encode() not in out:
        sys.stderr.write(proc.stderr.decode(errors="replace"))
        raise SetupFailed(
            f"env_setup {setup!r} failed with exit code {proc.returncode}: "
            + proc.stderr.decode(errors="replace")[-SETUP_TAIL_CHARS:].strip()
        )
    sys.stdout.write(out.split(marker.encode(), 1)[0].decode(errors="replace"))
    dump = out.split(marker.encode() + b"\n", 1)[1]
    pairs = (item.split(b"=", 1) for item in dump.split(b"\0") if b"=" in item)
    setup_env = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}
    for noise in _BASH_OWN:
        setup_env.pop(noise, None)
    return setup_env


@contextlib.contextmanager
def applied_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Make ``env`` the process environment for the duration, then restore the old one."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
