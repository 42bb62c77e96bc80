"""Functions the examples run inside jobs (top-level functions in a module pickle best)."""

import json


def process_path(cfg_path: str) -> dict:
    """Load a JSON config and compute something from it."""
    with open(cfg_path) as f:
        cfg = json.load(f)
    return {"id": cfg["id"], "result": cfg["value"] * 2.5}


def make_inputs(folder: str, count: int, width: int = 3) -> list[str]:
    """Write `count` small JSON configs under `folder`/inputs and return their paths."""
    import os

    os.makedirs(os.path.join(folder, "inputs"), exist_ok=True)
    os.makedirs(os.path.join(folder, "results"), exist_ok=True)
    paths = []
    for i in range(count):
        path = os.path.join(folder, "inputs", f"config_{i:0{width}d}.json")
        with open(path, "w") as f:
            json.dump({"id": i, "value": i}, f)
        paths.append(path)
    return paths
