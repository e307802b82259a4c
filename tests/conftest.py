"""Shared helpers and fixtures: small runs of the embedded digits, and one reference run that several tests read
or copy instead of training the same thing again."""

import csv
import dataclasses
import os
import shutil
import signal

import pytest

from trifecta.config import build_config
from trifecta.train import RunSpec, train

# A small TFF/s run: 1/16 width, 512 training and 200 test digits, 8 steps per epoch, a checkpoint every epoch.
SMALL = ["width=0.0625", "batch_size=64", "subset_train=512", "subset_test=200", "checkpoint_every=1"]
REFERENCE = [*SMALL, "epochs=3", "eval_epochs=1,3", "snapshot_epochs=1"]


def small_spec(out_dir, algo="tff", seed=0, overrides=REFERENCE, arch="s", dataset="mnist5k", **kw) -> RunSpec:
    """A CPU, deterministic run of the embedded digits (bitwise repeatable)."""
    cfg = build_config(overrides=list(overrides), algo=algo, dataset=dataset)
    return RunSpec(dataset, arch, algo, seed, out_dir, out_dir.parent / "data", cfg, device="cpu", deterministic=True,
                   **kw)


def read_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def copy_run(spec: RunSpec, dest) -> RunSpec:
    """The same run in another directory (checkpoints included), to be changed by one test."""
    shutil.copytree(spec.out_dir, dest)
    return dataclasses.replace(spec, out_dir=dest)


def signal_on_call(monkeypatch, owner, name: str, call: int, signum=signal.SIGTERM):
    """Make owner.name send `signum` to this process at its `call`-th call (1-based), as SLURM or a user would."""
    original = getattr(owner, name)
    calls = [0]

    def wrapped(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            os.kill(os.getpid(), signum)
        return original(*args, **kwargs)
    monkeypatch.setattr(owner, name, wrapped)


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> RunSpec:
    """TFF/s, 3 epochs of the small setting, evaluated at epochs 1 and 3, a snapshot at epoch 1; trained once."""
    spec = small_spec(tmp_path_factory.mktemp("reference") / "run")
    train(spec)
    return spec
