"""Probing classifiers and weight export on a tiny real run of the embedded digits."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from trifecta import data, probe, weights
from trifecta.config import build_config
from trifecta.evaluate import layer_features
from trifecta.recipe import Recipe
from trifecta.registry import get_dataset
from trifecta.train import RunSpec, train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    cfg = build_config(overrides=["width=0.0625", "batch_size=64", "subset_train=600", "subset_test=300",
                                  "epochs=1", "checkpoint_every=0"])
    spec = RunSpec("mnist5k", "f", "symba-bn", 0, root / "run", root / "data", cfg, device="cpu")
    train(spec)
    return spec.out_dir


def test_neutral_label_features(run_dir):
    net, record, epoch, sha = probe.load_snapshot_net(run_dir, None, torch.device("cpu"))
    assert epoch == 1 and sha == record["snapshots"]["1"]["sha256"]
    info = get_dataset("mnist5k")
    images = torch.randint(0, 255, (5, 1, 28, 28), dtype=torch.uint8)
    loader = data.DeviceLoader(data.Split(images, torch.zeros(5, dtype=torch.int64)), info, 2, "cpu")
    feats = layer_features(net, loader, 2, Recipe.for_run(torch.device("cpu")))
    assert feats.shape == (5, 128)  # 2048 units x width 0.0625
    # the neutral label is the mean of the label-matrix rows: the same as averaging the encodings of all labels
    x = data.standardize(images.float() / 255, info)
    with torch.no_grad():
        by_label = torch.stack([net.embed(x, torch.full((5,), c)) for c in range(10)]).mean(0)
        h = by_label
        for layer in net.layers[:3]:
            h = layer(h)
    assert torch.allclose(feats, h, atol=1e-5)


def test_probe_beats_chance_on_every_layer(run_dir, tmp_path):
    out = tmp_path / "probe.csv"
    assert probe.main(["--run-dir", str(run_dir), "--epochs", "15", "--hidden", "64", "--batch-size", "128",
                       "--data-dir", str(tmp_path), "--device", "cpu", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["layer"]) == [1, 2, 3, 4, 5, 6] and set(table["label"]) == {"neutral"}
    assert (table["probe_accuracy"] > 0.3).all()  # chance is 0.1
    merged = tmp_path / "merged.csv"
    assert probe.main(["--merge", str(out), str(out), "--out", str(merged), "--lineage", str(tmp_path / "l.json")]) == 0
    fragment = json.loads((tmp_path / "l.json").read_text())
    assert fragment["runs"] == {"mnist5k/f/symba-bn/seed0": str(run_dir)}
    assert fragment["artefacts"][0]["snapshots"][0]["sha256"] == table["snapshot_sha256"][0]


def test_missing_snapshot_epoch_is_an_error(run_dir):
    with pytest.raises(ValueError, match="no snapshot at epoch 7"):
        probe.load_snapshot_net(run_dir, 7, torch.device("cpu"))


def test_export_weights_of_the_best_seed(run_dir, tmp_path):
    record = json.loads((run_dir / "run.json").read_text())
    runs = pd.DataFrame([{"dataset": "mnist5k", "arch": "f", "algo": "symba-bn", "seed": 0, "epoch": 1,
                          "acc_last": 0.5, "run_dir": str(run_dir)},
                         {"dataset": "mnist5k", "arch": "f", "algo": "symba-bn", "seed": 1, "epoch": 1,
                          "acc_last": 0.4, "run_dir": "elsewhere"}])
    runs.to_csv(tmp_path / "runs.csv", index=False)
    out = tmp_path / "w.npz"
    assert weights.main(["--runs", str(tmp_path / "runs.csv"), "--dataset", "mnist5k", "--arch", "f",
                         "--algo", "symba-bn", "--layer", "6", "--out", str(out)]) == 0
    saved = np.load(out)
    assert saved["weight"].shape == (128, 128) and str(saved["run_id"]) == "mnist5k/f/symba-bn/seed0"
    assert str(saved["snapshot_sha256"]) == record["snapshots"]["1"]["sha256"] and int(saved["epoch"]) == 1
    with pytest.raises(ValueError, match="no layer 7"):
        weights.export_layer(run_dir, 1, 7)
