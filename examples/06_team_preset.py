"""A team preset: composed transforms shared as a Python value, applied to many specs."""

from toolz import pipe

from paracore import (
    JobSpec,
    gather,
    preset,
    preview,
    submit_map,
    with_env,
    with_name_template,
    with_resources,
    with_retries,
    with_tags,
)
from paracore.core.spec import Command

# What a team would keep in a shared module: every job of the lab gets these settings.
LAB_DEFAULTS = preset(
    with_resources(partition="compute", time="10m", mem="512M", cpus_per_task=1),
    with_env({"OMP_NUM_THREADS": "1"}),
    with_retries(1, backoff_s=5),
    with_tags({"project": "lab"}),
    with_name_template("{project}-{partition}-{step}"),
)


def main() -> None:
    spec = pipe(JobSpec.command("true"), LAB_DEFAULTS, with_tags({"step": "align"}))
    print(preview(spec, array_size=3))
    payloads = [Command(f'echo "sample {i} with $OMP_NUM_THREADS thread"') for i in range(3)]
    handles = submit_map(spec, payloads)
    print(f"job name: {handles[0].job_name}")
    for result in gather(handles, timeout=600):
        print(result.stdout.strip())


if __name__ == "__main__":
    main()
