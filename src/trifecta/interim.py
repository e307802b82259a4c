"""Tables and figures of a grid that is still running, from the runs finished so far: `trifecta interim ...`.

    trifecta interim --metrics results/train/*/*/*/seed*/metrics.json --configured cifar10/s/tff/seed0 ... \
        [--stand-in JSON] [--figures JSON] --out-dir results/interim

Tables 1-3 as `trifecta tables` makes them, with every configured run counted: a cell shows the seeds that
have finished ("(n=2/3)") and a note names the missing ones and why (unfinished, failed, not started). Then
the figures of `--figures` ({"fig1": {dataset, arch, algos, ...}}, those whose runs have all finished, as the
workflow's `interim` target chooses them) from the same finished runs. Nothing here trains or waits.
"""

import argparse
import json
from pathlib import Path

from trifecta import aggregate, figures, tables
from trifecta.paper import PAPER_VALUES, STEP_FIGURES
from trifecta.registry import Run


def draw(name: str, spec: dict, metrics: list[Path], runs, layers, out_dir: Path) -> None:
    """One figure from the finished runs it draws."""
    mine = [m for m in metrics if (run := Run.parse(m)).dataset == spec["dataset"] and run.arch == spec["arch"]
            and run.algo in spec["algos"]]
    epoch_means, steps = aggregate.collect_steps(mine) if name in STEP_FIGURES else (None, None)
    ctx = figures.Context(runs, layers, spec["dataset"], spec["arch"], spec["algos"], spec.get("epochs", []),
                          spec.get("layers", []), spec.get("epoch"), spec.get("clamp", 0.3),
                          epoch_means=epoch_means, steps=steps)
    figures.make_figure(name, ctx, out_dir / f"{name}.png", out_dir / f"{name}.pdf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta interim", description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", nargs="*", type=Path, default=[], help="metrics.json of each finished run")
    p.add_argument("--configured", nargs="*", default=[], metavar="RUN", help="every run of the grid")
    p.add_argument("--paper-values", type=Path, default=PAPER_VALUES)
    p.add_argument("--stand-in", default="{}", help="the config's `tables: stand_in:` as JSON")
    p.add_argument("--figures", default="{}", help="JSON: figures to draw and their specs")
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args(argv)
    tables.main(["--metrics", *map(str, args.metrics), "--configured", *args.configured, "--paper-values",
                 str(args.paper_values), "--stand-in", args.stand_in, "--out-dir", str(args.out_dir)])
    runs, layers = aggregate.collect(args.metrics)
    runs.to_csv(args.out_dir / "runs.csv", index=False)
    layers.to_csv(args.out_dir / "layers.csv", index=False)
    (args.out_dir / "figures").mkdir(parents=True, exist_ok=True)
    for name, spec in json.loads(args.figures).items():
        draw(name, spec, args.metrics, runs, layers, args.out_dir / "figures")
    print(f"interim: {len(args.metrics)} of {len(args.configured)} runs finished; tables and "
          f"{len(json.loads(args.figures))} figures in {args.out_dir}")
    return 0
