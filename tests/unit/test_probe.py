"""Probing classifiers and weight export on a tiny real run of the embedded digits."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from trifecta.analysis import probe, weights
from trifecta.analysis.probe import layer_features
from trifecta.operations.train import RunSpec, train
from trifecta.planning.probing import PROBE_DEFAULTS
from trifecta.training import data
from trifecta.training.settings import build_settings
from trifecta.training.recipe import Recipe
from trifecta.training.registry import get_dataset


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    cfg = build_settings(overrides=["width=0.0625", "batch_size=64", "subset_train=600", "subset_test=300",
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


def test_the_probe_options_default_to_the_declared_setup():
    args = probe.build_parser().parse_args(["--run-dir", "run", "--out", "probe.csv"])
    assert {key: getattr(args, key) for key in PROBE_DEFAULTS} == PROBE_DEFAULTS


def test_probe_command_on_every_layer_and_its_lineage(run_dir, tmp_path):
    out = tmp_path / "probe.csv"
    assert probe.main(["--run-dir", str(run_dir), "--epochs", "15", "--hidden", "64", "--batch-size", "128",
                       "--data-dir", str(tmp_path), "--device", "cpu", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table["layer"]) == [1, 2, 3, 4, 5, 6] and set(table["label"]) == {"neutral"}
    assert (table["probe_accuracy"] > 0.3).all()  # chance is 0.1
    merged = tmp_path / "merged.csv"
    assert probe.main(["--merge", str(out), "--out", str(merged), "--lineage", str(tmp_path / "l.json")]) == 0
    fragment = json.loads((tmp_path / "l.json").read_text())
    assert fragment["runs"] == {"mnist5k/f/symba-bn/seed0": str(run_dir)}
    recorded = json.loads((run_dir / "run.json").read_text())["snapshots"]["1"]["sha256"]
    assert fragment["artefacts"][0]["snapshots"] == [{"run": "mnist5k/f/symba-bn/seed0", "epoch": 1,
                                                      "sha256": recorded}]  # the very snapshot the run recorded


def linear_features(n, seed, scale=1.0, offset=0.0):
    """Features whose class is the argmax of a fixed linear map (a known, perfectly linear structure)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 20, generator=gen)
    w = torch.randn(20, 4, generator=torch.Generator().manual_seed(99))
    return x * scale + offset, (x @ w).argmax(1)


@pytest.mark.parametrize("scale, offset", [(1.0, 0.0), (1000.0, 500.0)])
def test_a_probe_finds_a_known_linear_structure_at_any_feature_scale(scale, offset):
    """Linearly separable features: the probe reaches (nearly) 100 %, also at a scale Adam at 1e-3 could not
    handle without the per-feature standardisation; with labels unrelated to the features, chance."""
    x_train, y_train = linear_features(2000, 0, scale, offset)
    x_test, y_test = linear_features(500, 1, scale, offset)
    acc, train_acc = probe.train_probe(x_train, y_train, x_test, y_test, 4, 64, 20, 1e-3, 128, seed=0)
    assert acc > 0.95 and train_acc > 0.95
    shuffled = y_test[torch.randperm(500, generator=torch.Generator().manual_seed(2))]
    acc, _ = probe.train_probe(x_train, y_train, x_test, shuffled, 4, 64, 20, 1e-3, 128, seed=0)
    assert acc < 0.4  # chance is 0.25


def test_conv_features_are_pooled_and_batch_norm_uses_running_statistics(tmp_path):
    spec = RunSpec("mnist5k", "s", "symba-bn", 0, tmp_path / "run", tmp_path, build_settings(overrides=[
        "width=0.0625", "batch_size=64", "subset_train=256", "subset_test=64", "epochs=1", "checkpoint_every=0"]),
        device="cpu")
    train(spec)
    net, *_ = probe.load_snapshot_net(spec.out_dir, None, torch.device("cpu"))
    info, recipe = get_dataset("mnist5k"), Recipe.for_run(torch.device("cpu"))
    images = torch.randint(0, 255, (6, 1, 28, 28), dtype=torch.uint8)
    split = data.Split(images, torch.zeros(6, dtype=torch.int64))
    together = layer_features(net, data.DeviceLoader(split, info, 6, "cpu"), 0, recipe)
    alone = layer_features(net, data.DeviceLoader(split, info, 1, "cpu"), 0, recipe)
    torch.testing.assert_close(together, alone)  # eval mode: no batch statistics, one image alone gives the same
    assert not net.training
    with torch.no_grad():  # layer 1 of the shallow CNN: 8 channels, 14x14 after its pool -> 4x4 average
        h = net(data.normalize(images, info), None, layers=1)[-1]
    assert together.shape == (6, 8 * 4 * 4)
    torch.testing.assert_close(together, torch.nn.functional.adaptive_avg_pool2d(h, 4).flatten(1))


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
    assert str(saved["run_id"]) == "mnist5k/f/symba-bn/seed0" and int(saved["epoch"]) == 1
    assert str(saved["snapshot_sha256"]) == record["snapshots"]["1"]["sha256"]
    snapshot = torch.load(record["snapshots"]["1"]["path"], weights_only=True)
    np.testing.assert_array_equal(saved["weight"], snapshot["net"]["layers.5.weight.weight"].numpy())
    with pytest.raises(ValueError, match="no layer 7"):
        weights.export_layer(run_dir, 1, 7)
