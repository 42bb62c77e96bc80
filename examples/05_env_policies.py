"""Seed example 5: environment policies -- inherit, overlay, replace, and a setup line."""

import os

from paracore.api import run_cmd

SHOW = 'echo "APP_MODE=${APP_MODE:-unset} HOME=${HOME:-unset} SETUP=${SETUP_DONE:-unset}"'


def main() -> None:
    os.environ["APP_MODE"] = "from-submitter"
    policies = {
        "inherit": {},
        "overlay": {"env": {"APP_MODE": "production"}},
        "replace": {"env": {"APP_MODE": "clean"}, "env_merge": "replace"},
        "setup": {"env_setup": "export SETUP_DONE=yes"},
    }
    jobs = {
        name: run_cmd(SHOW, job_name=f"env-{name}", time_min=5, mem_gb=0.5, **options)
        for name, options in policies.items()
    }
    for name, job in jobs.items():
        print(f"{name:8s} {job.result(timeout=600).stdout.strip()}")


if __name__ == "__main__":
    main()
