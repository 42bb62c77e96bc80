"""A team preset kept in paracore.yaml: a cluster profile plus named presets, used by map_cmds.

The file below is what a team commits at the root of its project. Every script run in that
project (or a sub directory) picks up the profile without code changes; `preset="quick"`
adds the team's named settings, and call keywords still win. This example writes the file
into ./team_project/ and runs there, so it never touches a paracore.yaml of yours.
"""

import os
from pathlib import Path

import paracore as pc

TEAM_FILE = """\
active_cluster: testcluster
naming:
  max_len: 60
clusters:
  testcluster:
    slurm:
      partition: short        # MaxTime 5 minutes on the test cluster
      account: paracore
      cpus_per_task: 1
      mem_gb: 0.5
      time_min: 3
      max_array_parallelism: 2
presets:
  quick:
    time: 2m
    env: {OMP_NUM_THREADS: "1"}
    retries: 1
    retry_backoff_s: 5
    tags: {project: lab, step: qc}
    name_template: "{project}-{partition}-{step}"
"""


def main() -> None:
    project = Path("team_project")
    project.mkdir(exist_ok=True)
    (project / "paracore.yaml").write_text(TEAM_FILE)
    os.chdir(project)

    resolved = pc.resolve()
    for key in ("partition", "account", "time_min"):
        print(f"{key} = {resolved.value(key)!r}  ({resolved.origin(key)})")

    jobs = pc.map_cmds(
        [f'echo "shard {i} with $OMP_NUM_THREADS thread"' for i in range(3)], preset="quick"
    )
    print(f"job name: {jobs[0].job_name}, tasks {len(jobs)}")
    for result in pc.gather(jobs, timeout=600):
        print(result.stdout.strip())

    # The same preset as a transform on the core API:
    spec = pc.with_preset("quick", pc.JobSpec.command("true"))
    print(f"preset time: {spec.resources.time_min} min, retries: {spec.retry.retries}")


if __name__ == "__main__":
    main()
