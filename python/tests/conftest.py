"""Fixtures of the mlpc Python tests (run by ctest as `python`, or by hand:
PYTHONPATH=build/python MLPC_CLI=build/tools/mlpc /usr/bin/python3 -m pytest python/tests).

The oracles are the mlpc command line (same checkpoint, same seed) and
closed forms; a missing names file or CLI skips the tests that need them.
"""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = str(ROOT / "examples" / "makemore.mlp")


def _names_file():
    for candidate in (ROOT / "data" / "names.txt", os.environ.get("MLPC_DATA"),
                      ROOT.parent / "shared" / "data" / "names.txt"):
        if candidate and pathlib.Path(candidate).is_file():
            return str(candidate)
        if candidate and pathlib.Path(candidate, "names.txt").is_file():
            return str(pathlib.Path(candidate, "names.txt"))
    return None


@pytest.fixture(scope="session")
def names(tmp_path_factory):
    """The first 4000 names of names.txt: all 27 characters, and evaluating
    its splits takes milliseconds (the tests train and evaluate often)."""
    path = _names_file()
    if path is None:
        pytest.skip("no names.txt (run scripts/setup.sh)")
    lines = pathlib.Path(path).read_text().splitlines()[:4000]
    assert len(set("".join(lines))) == 26
    small = tmp_path_factory.mktemp("data") / "names.txt"
    small.write_text("\n".join(lines) + "\n")
    return str(small)


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("MLPC_CLI") or str(ROOT / "build" / "tools" / "mlpc")
    if not os.access(path, os.X_OK):
        pytest.skip("no mlpc executable (set MLPC_CLI)")

    def run(*args):
        done = subprocess.run([path, *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


@pytest.fixture(scope="session")
def cli_run(cli, names, tmp_path_factory):
    """`mlpc train --seed 7 --steps 300`: checkpoint, metrics and per-step log."""
    out = tmp_path_factory.mktemp("cli")
    ckpt, metrics, log = out / "m.safetensors", out / "m.json", out / "m.csv"
    cli("train", MODEL, "--data", names, "--seed", 7, "--steps", 300, "--samples", 0,
        "--out", ckpt, "--metrics", metrics, "--log", log)
    losses = [float(line.split(",")[1]) for line in log.read_text().splitlines()[1:]]
    return {"ckpt": str(ckpt), "metrics": json.loads(metrics.read_text()), "log": losses}
