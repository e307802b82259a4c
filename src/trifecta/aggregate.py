"""Collect finished runs into tidy tables: `trifecta collect --runs DIR/metrics.json ... --out runs.csv
[--layers-out layers.csv]`.

runs.csv has one row per run and evaluation epoch (last-layer accuracy and the mean of the last k layers);
layers.csv one row per run, evaluation epoch and layer (from each run's eval.csv). Pure pandas: no torch, so
the tables rebuild in a second. Tables and figures of the paper are drawn from these two files.
"""

import argparse
import json
from pathlib import Path

import pandas as pd

KEYS = ["dataset", "arch", "algo", "seed"]
RUN_COLUMNS = [*KEYS, "epoch", "acc_last", "acc_last_k", "last_k", "run_dir", "identity_sha256"]
LAYER_COLUMNS = [*KEYS, "epoch", "layer", "accuracy", "max_goodness", "max_abs_weight"]


def read_run(metrics_path: Path) -> tuple[list[dict], pd.DataFrame]:
    """Rows of runs.csv and the layer table of one run, from its metrics.json and the eval.csv beside it."""
    summary = json.loads(Path(metrics_path).read_text())
    identity = summary["identity"]
    keys = {key: identity[key] for key in KEYS}
    last_k = identity["config"]["last_k"]
    run_dir = Path(metrics_path).parent
    rows = [{**keys, "epoch": int(epoch), "acc_last": evals["acc_last"],
             "acc_last_k": evals.get(f"acc_last{last_k}"), "last_k": last_k,
             "run_dir": run_dir.as_posix(), "identity_sha256": summary["identity_sha256"]}
            for epoch, evals in summary["evals"].items()]
    layers = pd.read_csv(run_dir / "eval.csv").assign(**keys)
    return rows, layers


def collect(metrics_paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, layers) tables of all runs, sorted by dataset, arch, algo, seed, epoch (and layer)."""
    if not metrics_paths:
        raise ValueError("no runs given")
    rows, layers = [], []
    for path in metrics_paths:
        run_rows, run_layers = read_run(path)
        rows += run_rows
        layers.append(run_layers)
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS).astype({"acc_last_k": float})
    runs = runs.sort_values(["dataset", "arch", "algo", "seed", "epoch"], ignore_index=True)
    layer_table = pd.concat(layers, ignore_index=True)[LAYER_COLUMNS]
    layer_table = layer_table.sort_values(["dataset", "arch", "algo", "seed", "epoch", "layer"], ignore_index=True)
    return runs, layer_table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="metrics.json of each finished run")
    p.add_argument("--out", type=Path, required=True, help="runs.csv: one row per run and evaluation epoch")
    p.add_argument("--layers-out", type=Path, help="layers.csv: one row per run, evaluation epoch and layer")
    args = p.parse_args(argv)
    runs, layers = collect(args.runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runs.to_csv(args.out, index=False)
    if args.layers_out is not None:
        args.layers_out.parent.mkdir(parents=True, exist_ok=True)
        layers.to_csv(args.layers_out, index=False)
    print(f"{len(args.runs)} runs: {len(runs)} rows in {args.out}"
          + (f", {len(layers)} in {args.layers_out}" if args.layers_out else ""))
    return 0
