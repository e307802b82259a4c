"""Shared helpers and fixtures: small runs of the embedded digits, and one reference run that several tests read
or copy instead of training the same thing again."""

import csv
import dataclasses
import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from trifecta.operations import gpus
from trifecta.identity.codehash import identity_sha256
from trifecta.operations.train import RunSpec, train
from trifecta.training import checkpoint
from trifecta.training.settings import build_settings

# A small TFF/s run: 1/16 width, 512 training and 200 test digits, 8 steps per epoch, a checkpoint every epoch.
SMALL = ["width=0.0625", "batch_size=64", "subset_train=512", "subset_test=200", "checkpoint_every=1"]
REFERENCE = [*SMALL, "epochs=3", "eval_epochs=1,3", "snapshot_epochs=1"]


def small_spec(out_dir, algo="tff", seed=0, overrides=REFERENCE, arch="s", dataset="mnist5k", **kw) -> RunSpec:
    """A CPU, deterministic run of the embedded digits (bitwise repeatable)."""
    cfg = build_settings(overrides=list(overrides), algo=algo, dataset=dataset)
    return RunSpec(dataset, arch, algo, seed, out_dir, out_dir.parent / "data", cfg, device="cpu", deterministic=True,
                   **kw)


def read_rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def store_of(spec: RunSpec) -> Path:
    """A run's identity folder (checkpoints, logs, record) in the default store, OUT/store."""
    return Path(spec.out_dir) / "store" / spec.identity_hash


def drop_resumes(spec: RunSpec, keep=lambda name, entry: False) -> None:
    """The state of a job killed before it finished: no metrics.json (in its store or run directory), and only
    the resume checkpoints that keep(name, index entry) accepts."""
    folder = store_of(spec)
    index = checkpoint.read_index(folder)
    for name, entry in list(index.items()):
        if entry["kind"] == "resume" and not keep(name, entry):
            (folder / name).unlink()
            del index[name]
    checkpoint.write_json_atomic(folder / "index.json", index)
    unfinish(spec)


def unfinish(spec: RunSpec) -> None:
    """Remove metrics.json from the run's store and run directory, as a job killed before it wrote them."""
    (store_of(spec) / "metrics.json").unlink(missing_ok=True)
    (Path(spec.out_dir) / "metrics.json").unlink(missing_ok=True)


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


def write_finished_run(root, dataset, arch, algo, seed, accs: dict, last_k=3, ensemble=None, settings=None,
                       training_code="ab" * 32, data=None, recipe=None):
    """A run directory as `trifecta train` leaves it, minus run.json and checkpoints: metrics.json, eval.csv,
    ensemble.csv, steps.csv. accs: {epoch: [accuracy of each layer]}; ensemble: {epoch: acc_last<k>} (default:
    the mean of the last k layers); settings, training_code, data, recipe: the identity's (default: a few settings,
    a made-up code hash, one made-up data file, float32 on a CPU). Returns the metrics.json path."""
    run_dir = Path(root) / "train" / dataset / arch / algo / f"seed{seed}"
    run_dir.mkdir(parents=True)
    ensemble = ensemble or {e: sum(layers[-last_k:]) / len(layers[-last_k:]) for e, layers in accs.items()}
    identity = {"dataset": dataset, "arch": arch, "algo": algo, "seed": seed,
                "settings": settings or {"epochs": max(accs), "last_k": last_k},
                "recipe": recipe or {"device": "cpu", "precision": "fp32"}, "training_code": training_code,
                "data": data or {"data.gz": "ab" * 32}}
    evals = {str(e): {"acc_layers": layers, "acc_last": layers[-1], f"acc_last{last_k}": ensemble[e]}
             for e, layers in accs.items()}
    (run_dir / "eval.csv").write_text("epoch,layer,accuracy,max_goodness,max_abs_weight\n" + "".join(
        f"{e},{i + 1},{a},{5.0 + i},0.2\n" for e, layers in accs.items() for i, a in enumerate(layers)))
    (run_dir / "ensemble.csv").write_text("epoch,last_k,accuracy\n" + "".join(
        f"{e},{last_k},{ensemble[e]}\n" for e in accs))
    (run_dir / "steps.csv").write_text("epoch,step,layer,loss,grad_norm\n" + "".join(
        f"1,0,{i + 1},0.7,1.0\n" for i in range(len(next(iter(accs.values()))))))
    (run_dir / "metrics.json").write_text(json.dumps({"identity": identity, "identity_sha256": identity_sha256(identity),
                                                      "evals": evals}))
    return run_dir / "metrics.json"


@pytest.fixture(autouse=True)
def private_gpu_pool(tmp_path_factory, monkeypatch):
    """Every test's GPU slots in a pool of its own (never the machine's /tmp/trifecta-gpu-slots), and no claim
    carried from one test to the next (a process holds its claim for life: operations/gpus.py)."""
    monkeypatch.setenv("TRIFECTA_GPU_POOL", str(tmp_path_factory.mktemp("gpu-pool")))
    yield
    if gpus._claimed is not None:
        gpus._claimed.release()
        gpus._claimed = None


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory) -> RunSpec:
    """TFF/s, 3 epochs of the small setting, evaluated at epochs 1 and 3, a snapshot at epoch 1; trained once."""
    spec = small_spec(tmp_path_factory.mktemp("reference") / "run")
    train(spec)
    return spec
