"""A stand-in for a user's program: read a JSON config, write a JSON result."""

import json
import sys


def main(config_path: str, output_path: str) -> None:
    """Double the config's value and write it next to its id."""
    with open(config_path) as handle:
        config = json.load(handle)
    with open(output_path, "w") as handle:
        json.dump({"id": config["id"], "result": config["value"] * 2}, handle)
    print(f"processed {config_path} -> {output_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
