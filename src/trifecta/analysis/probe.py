"""Probing classifiers (appendix F, Figure 8): how useful is each FF layer's representation?

    trifecta probe --run-dir results/train/cifar10/f/symba-ln/seed0 --epochs 100 --out probe.csv
    trifecta probe --merge results/probe/*/*/*/seed*.csv --out results/tables/probe.csv --lineage probe.lineage.json

For each layer of a trained FF network (a kept snapshot, hash-checked), the network is frozen and its
activations on the run's own train and test images are computed with the *neutral label*: the label plane
is the mean of the label-matrix rows, i.e. the encoding of the one-hot average (1/C, ..., 1/C), as Hinton
(2022) does for feature-based classification (appendix I). Batch norm uses its running statistics. Conv
activations are average-pooled to at most 4x4 positions so that probes of the CNNs stay small (the paper
probes only the FCN, whose activations are used whole).

Each probe is a small multi-layer classifier trained by backprop: per-feature standardisation (train-set
statistics, a fixed affine map), one hidden layer of ReLUs, a linear output; Adam, cross-entropy, minibatches
of the train features, a fixed number of epochs (paper: 100). Its test accuracy after the last epoch (no
selection on the test set) is reported per layer in a tidy CSV.
"""

import argparse
import json
import logging
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from trifecta.analysis import snapshot
from trifecta.operations.devices import add_device_options, device_from_options
from trifecta.training import data
from trifecta.training.algorithms.ff import ff_net
from trifecta.training.settings import settings_from_dict
from trifecta.training.evaluate import accuracy
from trifecta.training.recipe import Recipe
from trifecta.training.registry import check_combination, get_dataset, parse_ff_name

from trifecta.planning.probing import PROBE_DEFAULTS
from trifecta.planning.runs import run_id

log = logging.getLogger("trifecta.probe")
MAX_POSITIONS = 4  # conv activations are average-pooled to at most 4x4 positions
PROBE_COLUMNS = ["dataset", "arch", "algo", "seed", "epoch", "layer", "probe_accuracy", "probe_train_accuracy",
           "label", "probe_epochs", "hidden", "snapshot_sha256", "run_dir"]


# ---- Features ----

def load_snapshot_net(run_dir: Path, epoch: int | None, device) -> tuple:
    """(FF net with the snapshot's weights, in evaluation mode, record of the run, epoch, snapshot sha256)."""
    state, record, epoch, sha = snapshot.load_snapshot(run_dir, epoch)
    spec = parse_ff_name(record["algo"])
    if spec is None:
        raise ValueError(f"{run_dir}: '{record['algo']}' is not a Forward-Forward algorithm (probes need goodness "
                         "layers)")
    check_combination(record["algo"], record["arch"])
    net = ff_net(spec, get_dataset(record["dataset"]), record["arch"], settings_from_dict(record["settings"]))
    net.load_state_dict(state["net"])
    return net.to(device).eval(), record, epoch, sha


@torch.no_grad()
def layer_features(net, loader, layer: int, recipe) -> torch.Tensor:
    """Activations of `layer` (0-based) of an FF net with the neutral label, flattened: (N, features), float32.
    Conv activations are average-pooled to at most MAX_POSITIONS x MAX_POSITIONS first."""
    net.eval()
    out = []
    with recipe.autocast_context():
        for images, _ in loader:
            h = net(images, None, layers=layer + 1)[-1]
            if h.dim() == 4 and h.shape[-1] > MAX_POSITIONS:
                h = F.adaptive_avg_pool2d(h, MAX_POSITIONS)
            out.append(h.float().flatten(1))
    return torch.cat(out)


# ---- Probe ----

def train_probe(x_train, y_train, x_test, y_test, classes: int, hidden: int, epochs: int, lr: float,
                batch_size: int, seed: int) -> tuple[float, float]:
    """Train a one-hidden-layer MLP on frozen features; (test accuracy, train accuracy) after the last epoch."""
    torch.manual_seed(seed)
    mean, std = x_train.mean(0), x_train.std(0).clamp_min(1e-6)
    probe = nn.Sequential(nn.Linear(x_train.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, classes)).to(x_train.device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    generator = torch.Generator(device=x_train.device).manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x_train), device=x_train.device, generator=generator).split(batch_size):
            loss = F.cross_entropy(probe((x_train[idx] - mean) / std), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    @torch.no_grad()
    def score(x, y):
        return accuracy(torch.cat([probe((p - mean) / std) for p in x.split(8192)]), y).item()
    return score(x_test, y_test), score(x_train, y_train)


def probe_run(run_dir: Path, epoch: int | None, epochs: int, hidden: int, lr: float, batch_size: int,
              data_dir: Path, device) -> pd.DataFrame:
    """One row per layer: the probe's test accuracy on that layer's frozen features."""
    net, record, epoch, sha = load_snapshot_net(run_dir, epoch, device)
    recipe = Recipe.for_run(device, record["recipe"]["precision"])  # the numerics the run trained with
    info = get_dataset(record["dataset"])
    train_split, test_split = data.load_dataset(record["dataset"], data_dir)  # the run's own subsets
    splits = [data.take_subset(split, record["settings"].get(f"subset_{name}", 0))
              for split, name in ((train_split, "train"), (test_split, "test"))]
    train_loader, test_loader = (data.DeviceLoader(split, info, 2048, device) for split in splits)
    rows = []
    for layer in range(len(net.layers)):
        x_train = layer_features(net, train_loader, layer, recipe)
        x_test = layer_features(net, test_loader, layer, recipe)
        acc, train_acc = train_probe(x_train, train_loader.labels, x_test, test_loader.labels, info.num_classes,
                                     hidden, epochs, lr, batch_size, seed=record["seed"])
        log.info("layer %d: %d features, probe test accuracy %.4f (train %.4f)", layer + 1, x_train.shape[1],
                 acc, train_acc)
        rows.append({"dataset": record["dataset"], "arch": record["arch"], "algo": record["algo"],
                     "seed": record["seed"], "epoch": epoch, "layer": layer + 1, "probe_accuracy": acc,
                     "probe_train_accuracy": train_acc, "label": "neutral", "probe_epochs": epochs,
                     "hidden": hidden, "snapshot_sha256": sha, "run_dir": str(run_dir)})
    return pd.DataFrame(rows, columns=PROBE_COLUMNS)


def merge(paths: list[Path]) -> tuple[pd.DataFrame, dict]:
    """Concatenate per-run probe CSVs; the lineage fragment names each run's snapshot."""
    table = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True) if paths else pd.DataFrame(columns=PROBE_COLUMNS)
    artefacts, runs = [], {}
    for (dataset, arch, algo, seed, epoch), part in table.groupby(["dataset", "arch", "algo", "seed", "epoch"]):
        rid = run_id(dataset, arch, algo, seed)
        runs[rid] = part["run_dir"].iloc[0]
        artefacts.append({"kind": "probe", "id": f"probe {rid} epoch {epoch}", "runs": [rid],
                          "snapshots": [{"run": rid, "epoch": int(epoch), "sha256": part["snapshot_sha256"].iloc[0]}]})
    return table, {"artefacts": artefacts, "runs": runs, "inputs": [str(p) for p in paths]}


# ---- Command line ----

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta probe", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", type=Path, help="a finished FF run directory")
    p.add_argument("--merge", nargs="+", type=Path, help="instead: concatenate these per-run probe CSVs")
    p.add_argument("--out", type=Path, required=True, help="tidy CSV")
    p.add_argument("--lineage", type=Path, help="with --merge: write the lineage fragment here")
    p.add_argument("--epoch", type=int, help="snapshot epoch to probe (default: the run's last snapshot)")
    p.add_argument("--epochs", type=int, default=PROBE_DEFAULTS["epochs"],
                   help="probe training epochs (default: %(default)s, the paper's)")
    p.add_argument("--hidden", type=int, default=PROBE_DEFAULTS["hidden"],
                   help="hidden ReLU units of the probe (default: %(default)s)")
    p.add_argument("--lr", type=float, default=PROBE_DEFAULTS["lr"], help="Adam learning rate (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=PROBE_DEFAULTS["batch_size"],
                   help="minibatch size (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=Path("resources/data"), help="dataset root")
    add_device_options(p)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge:
        table, fragment = merge(args.merge)
        table.to_csv(args.out, index=False)
        if args.lineage:
            fragment["outputs"] = [str(args.out)]
            args.lineage.write_text(json.dumps(fragment, indent=1))
        return 0
    if args.run_dir is None:
        raise ValueError("give --run-dir (probe one run) or --merge (concatenate probe tables)")
    table = probe_run(args.run_dir, args.epoch, args.epochs, args.hidden, args.lr, args.batch_size,
                      args.data_dir, device_from_options(args))
    table.to_csv(args.out, index=False, float_format="%.6g")
    return 0
