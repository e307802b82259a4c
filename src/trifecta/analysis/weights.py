"""Export one layer's weight matrix from a kept snapshot, for Figure 10 (figures never read checkpoints).

    trifecta export-weights --runs results/tables/runs.csv --dataset cifar10 --arch f --algo symba-ln \
        --layer 6 --epoch 100 --out results/weights/fig10_symba-ln.npz

Of the run's seeds, the one with the best last-layer test accuracy at the epoch is exported (the paper's
"best-performing" run). The .npz holds `weight` (float32, outputs x inputs; a conv kernel is flattened to
outputs x inputs·3·3) and the run id, epoch, layer and the snapshot's sha256 for the lineage.
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from trifecta.analysis import snapshot
from trifecta.analysis.cells import best_seed
from trifecta.planning.runs import run_id
from trifecta.training.models import weight_key


def export_layer(run_dir: Path, epoch: int, layer: int) -> tuple[np.ndarray, str]:
    state, _, _, sha = snapshot.load_snapshot(run_dir, epoch)
    key = weight_key(layer - 1)
    if key not in state["net"]:
        raise ValueError(f"{run_dir}: the network has no layer {layer} (no '{key}' in the snapshot)")
    weight = state["net"][key].float()
    return weight.reshape(weight.shape[0], -1).numpy(), sha


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta export-weights", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="runs.csv from `trifecta collect`")
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--algo", required=True)
    p.add_argument("--layer", type=int, default=6, help="1-based layer")
    p.add_argument("--epoch", type=int, help="snapshot epoch (default: the runs' last evaluated epoch)")
    p.add_argument("--out", type=Path, required=True, help=".npz file")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    row, epoch = best_seed(pd.read_csv(args.runs), args.dataset, args.arch, args.algo, args.epoch)
    weight, sha = export_layer(Path(row["run_dir"]), epoch, args.layer)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rid = run_id(args.dataset, args.arch, args.algo, row["seed"])
    with open(args.out, "wb") as f:  # np.savez would append .npz to a name without it
        np.savez(f, weight=weight, run_id=rid, run_dir=str(row["run_dir"]), algo=args.algo, epoch=epoch,
                 layer=args.layer, snapshot_sha256=sha)
    print(f"export-weights: {rid} layer {args.layer} epoch {epoch} {weight.shape} -> {args.out}")
    return 0
