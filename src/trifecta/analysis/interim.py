"""Tables and figures of a grid that is still running, from the runs finished so far: `trifecta interim ...`.

    trifecta interim --configured cifar10/s/tff/seed0 ... [--train-dir results/train] [--stand-in JSON] \
        [--figures JSON] --out-dir results/interim

Tables 1-3 as `trifecta tables` makes them, with every configured run counted: the finished ones are those
whose run directory holds metrics.json now; a cell shows the seeds that have finished ("(n=2/3)") and a note
names the missing ones and why (unfinished, failed, not started). Then each figure of `--figures` (the
config's `figures:` entries, {"fig1": {dataset, arch, algos, ...}}) drawn from the tidy tables whose
configured runs have all finished (figures of probes and exported weights need jobs of their own: not here).
Nothing here trains or waits.
"""

import argparse
import json
from pathlib import Path

from trifecta.analysis import aggregate, figures, tables
from trifecta.planning.paper import FIGURES, PAPER_VALUES
from trifecta.planning.runs import TRAIN_DIR, Run
from trifecta.training.rundir import SUMMARY


def drawable(spec: dict, configured: list[Run], finished: set[Run]) -> list[Run] | None:
    """The finished runs a figure draws, or None while one of them is missing or unfinished."""
    runs = [r for r in configured if (r.dataset, r.arch) == (spec["dataset"], spec["arch"]) and r.algo in spec["algos"]]
    drawn = {r.algo for r in runs}
    return runs if drawn == set(spec["algos"]) and set(runs) <= finished else None


def draw(name: str, spec: dict, metrics: list[Path], runs, layers, out_dir: Path) -> None:
    """One figure from the finished runs it draws."""
    epoch_means, steps = aggregate.collect_steps(metrics) if "steps" in FIGURES[name].data else (None, None)
    ctx = figures.Context(runs, layers, spec["dataset"], spec["arch"], spec["algos"], spec.get("epochs", []),
                          spec.get("layers", []), spec.get("epoch"), spec.get("clamp", 0.3),
                          epoch_means=epoch_means, steps=steps)
    figures.make_figure(name, ctx, out_dir / f"{name}.png", out_dir / f"{name}.pdf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta interim", description=__doc__.split("\n\n")[0])
    p.add_argument("--configured", nargs="*", default=[], metavar="RUN", help="every run of the grid")
    p.add_argument("--train-dir", type=Path, default=Path(TRAIN_DIR), help="where run directories live")
    p.add_argument("--paper-values", type=Path, default=PAPER_VALUES)
    p.add_argument("--stand-in", default="{}", help="the config's `tables: stand_in:` as JSON")
    p.add_argument("--figures", default="{}", help="JSON: the config's figures and their specs")
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args(argv)
    configured = [Run.parse(item) for item in args.configured]
    metrics = {run: Path(run.dir(str(args.train_dir))) / SUMMARY for run in configured}
    finished = {run for run, path in metrics.items() if path.exists()}
    done = [metrics[run] for run in configured if run in finished]
    tables.make_tables(done, args.out_dir, configured=args.configured, stand_in=json.loads(args.stand_in),
                       paper_values=args.paper_values, train_dir=args.train_dir)
    runs, layers = aggregate.collect(done)
    runs.to_csv(args.out_dir / "runs.csv", index=False)
    layers.to_csv(args.out_dir / "layers.csv", index=False)
    (args.out_dir / "figures").mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, spec in json.loads(args.figures).items():
        mine = drawable(spec, configured, finished)
        if {"probe", "weights"}.isdisjoint(FIGURES[name].data) and mine:
            draw(name, spec, [metrics[run] for run in mine], runs, layers, args.out_dir / "figures")
            drawn.append(name)
    print(f"interim: {len(done)} of {len(configured)} runs finished; tables and figures "
          f"{', '.join(drawn) or '(none)'} in {args.out_dir}")
    return 0
