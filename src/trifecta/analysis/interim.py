"""Tables and figures of a grid that is still running, from the runs finished so far: `trifecta interim ...`.

    trifecta interim --configured cifar10/s/tff/seed0 ... [--train-dir results/train] [--stand-in JSON] \
        [--figures JSON] --out-dir results/interim

Tables 1-3 as `trifecta tables` makes them, with every configured run counted: the finished ones are those
whose run directory holds metrics.json now; a cell shows the seeds that have finished ("(n=2/3)") and a note
names the missing ones and why (unfinished, failed, not started). Then each figure of `--figures` (the
config's `figures:` entries, {"fig1": {dataset, arch, algos, ...}}, made into jobs as the rules make them:
planning/figurejob.py) drawn from the tidy tables whose configured runs have all finished (figures of probes
and exported weights need jobs of their own: not here).
Nothing here trains or waits.
"""

import argparse
import json
from pathlib import Path

from trifecta.analysis import collect, figures, tables
from trifecta.analysis.plotting import Context
from trifecta.planning.figurejob import FigureJob, figure_job
from trifecta.planning.paper import FIGURES, PAPER_VALUES
from trifecta.planning.runs import TRAIN_DIR, Run
from trifecta.training.rundir import SUMMARY

NEEDS_JOBS = {"probe", "weights"}  # data that only jobs of their own make: figures that need it wait


def draw(job: FigureJob, metrics: list[Path], runs, layers, out_dir: Path) -> None:
    """One figure from the finished runs it draws."""
    epoch_means, steps = collect.collect_steps(metrics) if "steps" in FIGURES[job.name].data else (None, None)
    ctx = Context(runs, layers, job.dataset, job.arch, list(job.algos), job.options, epoch_means=epoch_means,
                  steps=steps)
    figures.make_figure(job.name, ctx, out_dir / f"{job.name}.png", out_dir / f"{job.name}.pdf")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta interim", description=__doc__.split("\n\n")[0])
    p.add_argument("--configured", nargs="*", default=[], metavar="RUN", help="every run of the grid")
    p.add_argument("--train-dir", type=Path, default=Path(TRAIN_DIR), help="where run directories live")
    p.add_argument("--paper-values", type=Path, default=PAPER_VALUES)
    p.add_argument("--stand-in", default="{}", help="the config's `tables: stand_in:` as JSON")
    p.add_argument("--figures", default="{}", help="JSON: the config's figures and their entries")
    p.add_argument("--out-dir", type=Path, required=True)
    args = p.parse_args(argv)
    configured = [Run.parse(item) for item in args.configured]
    metrics = {run: Path(run.dir(str(args.train_dir))) / SUMMARY for run in configured}
    finished = {run for run, path in metrics.items() if path.exists()}
    done = [metrics[run] for run in configured if run in finished]
    tables.make_tables(done, args.out_dir, configured=args.configured, stand_in=json.loads(args.stand_in),
                       paper_values=args.paper_values, train_dir=args.train_dir)
    runs, layers = collect.collect(done)
    runs.to_csv(args.out_dir / "runs.csv", index=False)
    layers.to_csv(args.out_dir / "layers.csv", index=False)
    (args.out_dir / "figures").mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, entry in json.loads(args.figures).items():
        job = figure_job(name, entry, configured)
        if job and NEEDS_JOBS.isdisjoint(FIGURES[name].data) and set(job.runs) <= finished:
            draw(job, [metrics[run] for run in job.runs], runs, layers, args.out_dir / "figures")
            drawn.append(name)
    print(f"interim: {len(done)} of {len(configured)} runs finished; tables and figures "
          f"{', '.join(drawn) or '(none)'} in {args.out_dir}")
    return 0
