"""Quickstart: a shell command and a Python function over a few items.

Runs on Slurm when `sbatch` is on PATH, otherwise on this machine through submitit's local
executor, with the same code and the same results.
"""

import paracore


def square(x: int) -> int:
    """The work: top-level functions pickle best."""
    return x * x


def main() -> None:
    backend = paracore.backend_for(paracore.JobSpec.command("true"))
    print(f"backend: {backend}")

    job = paracore.run_cmd("echo hello from $(hostname)", job_name="quickstart-hello", time_min=5)
    print(f"job {job.job_id} ({job.job_name}) says: {job.result(timeout=300).stdout.strip()}")

    jobs = paracore.map_func(square, range(5), job_name="quickstart-squares", time_min=5)
    print(f"array tasks: {[j.job_id for j in jobs]}")
    print(f"squares: {paracore.gather(jobs, timeout=300)}")
    print(f"logs of the first task: {jobs[0].stdout_path}")


if __name__ == "__main__":
    main()
