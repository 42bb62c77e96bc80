"""Translate a JobSpec into submitit's parameters (pure).

``to_submitit_params`` is the one place that knows submitit's parameter names; the names it
may emit are listed in :data:`SLURM_PARAM_NAMES` and :data:`LOCAL_PARAM_NAMES`, and the test
suite checks both against what submitit accepts.
"""

from __future__ import annotations

from typing import Any, Literal

from paracore.core.resolved import ResolvedSpec
from paracore.core.rules import effective_parallelism

ExecutorKind = Literal["slurm", "local"]

SLURM_PARAM_NAMES: frozenset[str] = frozenset(
    {
        "name",
        "timeout_min",
        "mem_gb",
        "cpus_per_task",
        "gpus_per_node",
        "slurm_partition",
        "slurm_account",
        "slurm_qos",
        "slurm_array_parallelism",
        "slurm_additional_parameters",
        "slurm_use_srun",
    }
)
LOCAL_PARAM_NAMES: frozenset[str] = frozenset({"name", "timeout_min", "cpus_per_task", "mem_gb"})


WARNING_SIGNAL = "URG@60"
"""The pre-timeout warning paracore asks Slurm for: one that processes ignore by default.

submitit asks for USR2 90 s before the time limit and, in a task that cannot checkpoint,
answers it by ending the job as FAILED, up to 150 s early (Slurm may signal 60 s early).
paracore's tasks run to their limit instead, and one that overruns ends TIMEOUT, as sbatch
users expect. An explicit ``extra={"signal": ...}`` wins.
"""


BATCH_STEP = """The payload runs in the job's batch step, as in a plain sbatch script.

submitit starts the payload inside an ``srun`` step, which holds the allocation's CPUs and
memory: a command that starts job steps itself (``srun ./app``, ``mpirun``) then waits for
resources until its time limit. Run in the batch step, such a command starts its steps in the
allocation as it would from a hand-written batch script.
"""


def to_submitit_params(spec: ResolvedSpec, kind: ExecutorKind) -> dict[str, Any]:
    """submitit ``AutoExecutor.update_parameters`` keywords for ``spec`` on ``kind``."""
    res = spec.resources
    params: dict[str, Any] = {"name": spec.name}
    if res.time_min is not None:
        params["timeout_min"] = res.time_min
    if res.cpus_per_task is not None:
        params["cpus_per_task"] = res.cpus_per_task
    if res.mem_mb is not None:
        params["mem_gb"] = res.mem_mb / 1024  # exact: 1024 is a power of two
    if kind == "local":
        return params
    if res.gpus is not None and res.gpus > 0:
        params["gpus_per_node"] = res.gpus
    for field in ("partition", "account", "qos"):
        value = getattr(res, field)
        if value is not None:
            params[f"slurm_{field}"] = value
    parallelism, _warning = effective_parallelism(spec)
    if parallelism is not None:
        params["slurm_array_parallelism"] = parallelism
    params["slurm_additional_parameters"] = {"signal": WARNING_SIGNAL, **dict(res.extra)}
    params["slurm_use_srun"] = False  # the payload runs in the batch step: see BATCH_STEP
    return params
