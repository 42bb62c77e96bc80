"""A workflow as planit writes it: download, preprocess, two trainings side by side, evaluate.

Steps wait on each other with ``afterok``; files pass data as on any cluster, and
``Result("train_a")`` hands a step's return value to a later one. ``describe()`` prints the
plan with its critical path and requested core-hours; submitting the same plan again re-uses
every step that completed (after a fix, only the failed step and what follows it run).
"""

import json
from pathlib import Path

from paracore import Chain, Parallel, Plan, Result, Step

DATA = Path("workflow-data").absolute()
CPU = {"time_min": 5, "mem_gb": 0.5, "cpus_per_task": 1}
TRAIN = {"time_min": 10, "mem_gb": 0.5, "cpus_per_task": 2}


def download(n: int) -> None:
    DATA.mkdir(exist_ok=True)
    (DATA / "raw.json").write_text(json.dumps(list(range(n))))


def preprocess() -> None:
    raw = json.loads((DATA / "raw.json").read_text())
    (DATA / "clean.json").write_text(json.dumps([x / 10 for x in raw]))


def train(model: str, lr: float) -> dict:
    xs = json.loads((DATA / "clean.json").read_text())
    return {"model": model, "loss": round(sum((x - lr) ** 2 for x in xs), 3)}


def evaluate(*trained: dict) -> str:
    best = min(trained, key=lambda t: t["loss"])
    return f"best {best['model']} (loss {best['loss']})"


plan = Plan(
    "example-workflow",
    Chain(
        Step("download", download, CPU, 20),
        Step("preprocess", preprocess, CPU),
        Parallel(
            Step("train_a", train, TRAIN, "model_a", lr=0.5),
            Step("train_b", train, TRAIN, "model_b", lr=1.0),
        ),
        Step("evaluate", evaluate, CPU, Result("train_a"), Result("train_b")),
    ),
)


def main() -> None:
    plan.describe()
    results = plan.submit().wait(timeout=600)
    print("evaluate:", results["evaluate"])
    again = plan.submit()
    print("submitted again:", sorted(set(again.how.values())))
    print(again.status())


if __name__ == "__main__":
    main()
