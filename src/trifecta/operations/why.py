"""`trifecta why [RUN_DIR ...]`: why the workflow trains a run again, or why it does not.

For each run directory (default: every run of the grid and every run directory under --train-dir), the identity
that the config, this checkout's code and the data files give the run now, beside the one the directory shows
(metrics.json; run.json while it trains or after it failed):
  up to date       the same identity: nothing is trained
  in the store     another identity is shown, but the one asked for is complete in the run store: shown again
                   without training (a reverted setting)
  continues        only more epochs (with evaluations and snapshots after the shown run's end): the run goes on
                   from that finished identity's final checkpoint and trains the epochs beyond it
  trains           from epoch 1, for what differs
  not trained yet  no record
and what differs: each setting (old -> new), the recipe, each definition of training/ the run can execute that
changed, appeared or is no longer executed (by module and name), each data file. A shown run that itself
continued a shorter one says which. No torch; each dataset's files are hashed once.

    trifecta why results/train/mnist5k/t/pep/seed0 --configfile workflow/embedded.yaml
"""

import argparse
import sys
from pathlib import Path

from trifecta.operations import store as run_store
from trifecta.planning.grid import Grid, GridError
from trifecta.planning.configfile import load_config
from trifecta.identity.codehash import identity_differences
from trifecta.identity.codehash import data_checksums, identity_sha256
from trifecta.identity.runcode import run_code
from trifecta.planning.runs import TRAIN_DIR, Run
from trifecta.operations.status import run_dirs
from trifecta.training.settings import settings_from_dict
from trifecta.training.registry import DatasetError
from trifecta.training.rundir import RECORD, SUMMARY, read_json


def shown_identity(run_dir: Path) -> tuple[dict | None, dict]:
    """The identity a run directory shows (metrics.json, else run.json) and its record ({} without one)."""
    record = read_json(run_dir / RECORD) if (run_dir / RECORD).exists() else {}
    if (run_dir / SUMMARY).exists():
        return read_json(run_dir / SUMMARY)["identity"], record
    keys = ("dataset", "arch", "algo", "seed", "settings", "recipe", "training_code", "data")
    return ({k: record[k] for k in keys if k in record} or None), record


def code_changes(record: dict, run: Run) -> list[str]:
    """Each definition of training/ whose parsed code differs between the run's record and the checkout now."""
    before = record.get("training_code_definitions")
    if before is None:
        return ["code: the record lists no definitions (an older run): the code it can execute differs"]
    now = run_code(run.dataset, run.arch, run.algo).definitions
    lines = []
    for key in sorted(set(before) | set(now)):
        if before.get(key) != now.get(key):
            what = "changed" if key in before and key in now else "now executed" if key in now else "no longer executed"
            lines.append(f"code {key}: {what}")
    return lines


def _value(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:58] + "…"


def explain(run: Run, run_dir: Path, grid: Grid, checksums, store: Path) -> list[str]:
    """The lines that say why the run trains again (or not); the first says the verdict."""
    shown, record = shown_identity(run_dir)
    if run not in grid.runs:
        return [f"{run.id}: not in the grid (the config's `runs`): the workflow does not train it"]
    device = grid.device() or ((shown or {}).get("recipe") or {}).get("device")
    expected = grid.expected_identity(run, device)
    data = checksums(run.dataset)
    if isinstance(data, str):
        notes = [f"  data: {data}"]
    else:
        expected["data"], notes = data, []
    if shown is None:
        return [f"{run.id}: not trained yet", *notes]
    if grid.device() is None and device == "cpu":
        notes.append("  shown run computed on the CPU: a job that gets a GPU computes another recipe, trains again")
    if continued := record.get("continued_from"):
        notes.append(f"  shown run continued identity {continued['identity_sha256']} after its "
                     f"{continued['epochs']} epochs")
    differences = identity_differences(shown, expected)
    if not differences:
        return [f"{run.id}: up to date (identity {record.get('identity_sha256', '?')})", *notes]
    lines = []
    for what, old, new in differences:
        if what == "training_code":
            lines += [f"  {line}" for line in code_changes(record, run)]
        elif what.startswith("settings."):
            lines.append(f"  setting {what.removeprefix('settings.')}: {_value(old)} -> {_value(new)}")
        elif what.startswith("data."):
            lines.append(f"  data {what.removeprefix('data.')}: sha256 {str(old)[:12]}… -> {str(new)[:12]}…")
        else:
            lines.append(f"  {what}: {_value(old)} -> {_value(new)}")
    return [verdict(run, expected, store, grid), *lines, *notes]


def verdict(run: Run, expected: dict, store: Path, grid: Grid) -> str:
    """What the next training job of the run does: show a complete identity, continue one, or train."""
    if "data" not in expected:
        return f"{run.id}: trains again (its data files cannot be read, so the new identity is not known)"
    wanted = identity_sha256(expected)
    if (store / wanted / SUMMARY).exists():
        return f"{run.id}: in the store: identity {wanted} is complete there and is shown again without training"
    shorter = run_store.continuable(store, expected, grid.settings(run))
    if shorter is not None:
        done = settings_from_dict(read_json(shorter / SUMMARY)["identity"]["settings"]).epochs
        return (f"{run.id}: continues identity {shorter.name} after its {done} epochs: trains epochs "
                f"{done + 1}..{grid.settings(run).epochs} (identity {wanted})")
    return f"{run.id}: trains from epoch 1 (identity {wanted})"


def data_reader(data_dir: Path):
    """checksums(dataset): each dataset's files hashed once; a string says why they cannot be."""
    found = {}

    def checksums(dataset: str):
        if dataset not in found:
            try:
                found[dataset] = data_checksums(dataset, data_dir)
            except (DatasetError, OSError) as err:
                found[dataset] = f"cannot be read ({err})"
        return found[dataset]
    return checksums


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta why", description=__doc__.split("\n\n")[0])
    p.add_argument("run_dirs", nargs="*", type=Path, help="run directories (default: every run of the grid)")
    p.add_argument("--config", help="workflow config (default: ./config.yaml)")
    p.add_argument("--configfile", nargs="+", action="extend", default=[], help="overlays, applied in order")
    p.add_argument("--train-dir", type=Path, default=Path(TRAIN_DIR), help=f"run directories (default: {TRAIN_DIR})")
    args = p.parse_args(argv)
    files = [args.config or "config.yaml", *args.configfile]
    try:
        config = load_config(files)
        grid = Grid.from_config(config)
    except (GridError, KeyError, TypeError) as err:
        print(f"trifecta why: error: config: {err}", file=sys.stderr)
        return 2
    if args.run_dirs:
        runs = [(Run.parse(d), Path(d)) for d in args.run_dirs]
    else:
        listed = list(grid.runs) + [r for r in run_dirs(args.train_dir) if r not in grid.runs]
        runs = [(run, Path(run.dir(str(args.train_dir)))) for run in listed]
    checksums = data_reader(Path(config.get("data_dir", "resources/data")))
    store = Path(config.get("store_dir", "resources/store"))
    for run, run_dir in runs:
        print("\n".join(explain(run, run_dir, grid, checksums, store)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
