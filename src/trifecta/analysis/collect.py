"""Collect finished runs into tidy tables: `trifecta collect --runs DIR/metrics.json ... [--out runs.csv]
[--layers-out layers.csv [--lineage runs.lineage.json]] [--epochs-out epochs.csv --steps-out steps.csv]`.

runs.csv has one row per run and evaluation epoch (last-layer accuracy and the mean of the last k layers);
layers.csv one row per run, evaluation epoch and layer (from each run's eval.csv); epochs.csv one row per run,
epoch and layer with the epoch's mean of every step metric (loss, separation, mean goodness, gradient norm);
steps.csv the step metrics themselves, every k-th step so that no run has more than MAX_POINTS steps. A run
directory's files are complete once its metrics.json exists (written last), so metrics.json is what names a
run. Pure pandas: no torch. Figures are drawn from these files only. runs.csv and layers.csv hold every run of
the grid, those no table reads too, so their lineage fragment names every run: the audit checks them all and
recomputes both files from the runs (provenance/audit.py).
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from trifecta.planning.runs import run_id
from trifecta.training.rundir import EVAL, EVAL_COLUMNS, STEPS, read_json

KEYS = ["dataset", "arch", "algo", "seed"]
RUN_COLUMNS = [*KEYS, "epoch", "acc_last", "acc_last_k", "last_k", "run_dir", "identity_sha256"]
LAYER_COLUMNS = [*KEYS, *EVAL_COLUMNS]
MAX_POINTS = 4000  # steps kept per run in steps.csv (for step-level curves)


def read_run(metrics_path: Path) -> tuple[list[dict], pd.DataFrame]:
    """Rows of runs.csv and the layer table of one run, from its metrics.json and the eval.csv beside it."""
    summary = read_json(metrics_path)
    identity = summary["identity"]
    keys = {key: identity[key] for key in KEYS}
    last_k = identity["settings"]["last_k"]
    run_dir = Path(metrics_path).parent
    rows = [{**keys, "epoch": int(epoch), "acc_last": evals["acc_last"],
             "acc_last_k": evals.get(f"acc_last{last_k}"), "last_k": last_k,
             "run_dir": run_dir.as_posix(), "identity_sha256": summary["identity_sha256"]}
            for epoch, evals in summary["evals"].items()]
    layers = pd.read_csv(run_dir / EVAL).assign(**keys)
    return rows, layers


def collect(metrics_paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs, layers) tables of all runs, sorted by dataset, arch, algo, seed, epoch (and layer)."""
    if not metrics_paths:
        return pd.DataFrame(columns=RUN_COLUMNS), pd.DataFrame(columns=LAYER_COLUMNS)
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


def collect_steps(metrics_paths) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(epochs, steps): per run, each epoch's mean of every step metric by layer (all steps), and the step rows
    of every k-th step, k chosen so that no run keeps more than MAX_POINTS steps."""
    epochs, steps = [], []
    for path in metrics_paths:
        identity = read_json(path)["identity"]
        rows = pd.read_csv(Path(path).parent / STEPS).assign(**{key: identity[key] for key in KEYS})
        metrics = [c for c in rows.columns if c not in (*KEYS, "epoch", "step", "layer")]
        epochs.append(rows.groupby([*KEYS, "epoch", "layer"], as_index=False)[metrics].mean())
        every = -(-rows["step"].nunique() // MAX_POINTS)
        steps.append(rows[(rows["step"] - rows["step"].min()) % every == 0])
    order = [*KEYS, "epoch", "layer"]
    return (pd.concat(epochs, ignore_index=True).sort_values(order, ignore_index=True),
            pd.concat(steps, ignore_index=True).sort_values([*KEYS, "step", "layer"], ignore_index=True))


def lineage_fragment(runs: pd.DataFrame, runs_csv: Path, layers_csv: Path) -> dict:
    """runs.csv and layers.csv -> every run they collect, for `trifecta lineage`."""
    run_dirs = {run_id(r.dataset, r.arch, r.algo, r.seed): r.run_dir for r in runs.itertuples()}
    files = [str(runs_csv), str(layers_csv)]
    return {"artefacts": [{"kind": "collection", "id": Path(runs_csv).name, "files": files,
                           "runs": sorted(run_dirs)}],
            "runs": run_dirs, "outputs": files}


def _write(frame: pd.DataFrame, path: Path | None) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(path, index=False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta collect", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", type=Path, required=True, help="metrics.json of each finished run")
    p.add_argument("--out", type=Path, help="runs.csv: one row per run and evaluation epoch")
    p.add_argument("--layers-out", type=Path, help="layers.csv: one row per run, evaluation epoch and layer")
    p.add_argument("--lineage", type=Path, help="with --out and --layers-out: their lineage fragment (JSON)")
    p.add_argument("--epochs-out", type=Path, help="epochs.csv: epoch means of the step metrics per layer")
    p.add_argument("--steps-out", type=Path, help="steps.csv: every k-th step's metrics per layer")
    args = p.parse_args(argv)
    if args.lineage and not (args.out and args.layers_out):
        p.error("--lineage needs --out and --layers-out: the files it describes")
    if args.out or args.layers_out:
        runs, layers = collect(args.runs)
        _write(runs, args.out)
        _write(layers, args.layers_out)
        if args.lineage:
            args.lineage.write_text(json.dumps(lineage_fragment(runs, args.out, args.layers_out), indent=1))
    if args.epochs_out or args.steps_out:
        epochs, steps = collect_steps(args.runs)
        _write(epochs, args.epochs_out)
        _write(steps, args.steps_out)
    print(f"{len(args.runs)} runs collected into " + ", ".join(
        str(p) for p in (args.out, args.layers_out, args.epochs_out, args.steps_out) if p))
    return 0
