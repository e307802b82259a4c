"""The GPU-hours of a workflow config's training grid: what its jobs request, and what benchmarked epochs need.

    python benchmarks/grid_gpu_hours.py [--config config.yaml] [--overlay FILE.yaml] [--epoch-times FILE.json]

Requested: the sum of the training jobs' first-attempt SLURM --time x GPUs per job, computed as the workflow
plans it (trifecta.planning.runtimes: measured epoch times of the finished runs in the config's store_dir with the
margin, else the config's estimates), per grid entry with the count of requests from measured epochs.

Needed: epoch times come from `benchmarks/epoch_time.py --json FILE` run on the target GPU (keys
train_epoch_s_tff_s, eval_s_tff_s, train_epoch_s_tff_d, eval_s_tff_d, train_epoch_s_bp_d); without a file,
the figures of a GPU-resident bf16 pipeline measured on one H200 on 2026-11-26, outside this repository
(an earlier design of the step), are used. A run costs
epochs x train epoch x (training images / 50,000) + evaluations x eval time x (test images / 10,000) x
(classes / 10); the grid and each run's settings come from trifecta.planning.grid, the datasets' sizes from the
registry. FCN, tiny-network and PEPITA epochs are not benchmarked: they are estimated from the FLOP
ratio to the shallow CNN, with a floor for small-step launch overhead, and marked as estimates.
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

from trifecta.planning import runtimes
from trifecta.planning.grid import Grid
from trifecta.planning.configfile import load_config
from trifecta.training.registry import BASELINES, get_dataset

# Seconds on one H200 with data and augmentation on the GPU (measured 2026-11-26 outside this repository, an
# earlier design of the step; no GPU has run this repository yet).
H200_SECONDS = {"train_epoch_s_tff_s": 0.86, "eval_s_tff_s": 0.34, "train_epoch_s_tff_d": 1.53,
                "eval_s_tff_d": 0.64, "train_epoch_s_bp_d": 0.76}
# Estimated (train epoch, eval) seconds of the unbenchmarked networks: the FCN has ~1/10 of the shallow CNN's
# FLOPs, the tiny nets less; 0.3 s is a floor for ~100 steps of launch-bound work, PEPITA has 782 steps.
ESTIMATES = {("f", "ff"): (0.3, 0.1), ("t", "ff"): (0.3, 0.1), ("f", "fa"): (0.3, 0.05),
             ("t", "fa"): (0.3, 0.05), ("t", "pep"): (2.0, 0.05), ("s", "bp"): (0.5, 0.05)}


def epoch_seconds(arch: str, algo: str, times: dict) -> tuple[float, float, bool]:
    """(train epoch, evaluation, measured?) seconds on CIFAR-10-sized data."""
    family = algo if algo in BASELINES else "ff"
    if family == "ff" and arch in ("s", "d"):
        return times[f"train_epoch_s_tff_{arch}"], times[f"eval_s_tff_{arch}"], True
    if family == "bp" and arch == "d":
        return times["train_epoch_s_bp_d"], 0.05, True
    return (*ESTIMATES[(arch, family)], False)


def estimate(grid: Grid, times: dict) -> dict:
    hours, runs, estimated = defaultdict(float), defaultdict(int), set()
    for run, entry in grid.runs.items():
        info, cfg = get_dataset(run.dataset), grid.settings(run)
        train_s, eval_s, measured = epoch_seconds(run.arch, run.algo, times)
        seconds = (cfg.epochs * train_s * info.train_images / 50_000
                   + len(cfg.eval_epochs) * eval_s * info.test_images / 10_000 * info.num_classes / 10)
        hours[entry["name"]] += seconds / 3600
        runs[entry["name"]] += 1
        if not measured:
            estimated.add(entry["name"])
    return {"hours": dict(hours), "runs": dict(runs), "estimated": sorted(estimated)}


def requested(grid: Grid) -> dict:
    """GPU-hours requested per grid entry (first attempts) and how many of its runs' requests are measured."""
    times, gpus = runtimes.epoch_times(grid.config["store_dir"]), grid.config["resources"]["gpu"]
    hours, measured = defaultdict(float), defaultdict(int)
    for run, entry in grid.runs.items():
        hours[entry["name"]] += runtimes.train_minutes(grid, run, times) / 60 * gpus
        measured[entry["name"]] += runtimes.epoch_minutes(grid, run, times)[1] != runtimes.ESTIMATE
    return {"hours": dict(hours), "measured": dict(measured)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=Path("config.yaml"))
    p.add_argument("--overlay", type=Path, action="append", default=[], help="a --configfile overlay")
    p.add_argument("--epoch-times", type=Path, help="JSON written by benchmarks/epoch_time.py on the target GPU")
    args = p.parse_args(argv)
    grid = Grid.from_config(load_config([args.config, *args.overlay]))
    times = dict(H200_SECONDS)
    source = "H200 figures of 2026-11-26 (an earlier design, measured outside this repository)"
    if args.epoch_times:
        measured = json.loads(args.epoch_times.read_text())
        times.update({k: measured[k] for k in H200_SECONDS if k in measured})
        source = f"{measured.get('device', '?')} ({args.epoch_times})"
    result, asked = estimate(grid, times), requested(grid)
    print(f"requested: SLURM --time of every run's first attempt (store {grid.config['store_dir']}); "
          f"needed: epoch times of {source}")
    for name, h in result["hours"].items():
        mark = " (estimated epoch time)" if name in result["estimated"] else ""
        runs = result["runs"][name]
        print(f"  {name:24s} {runs:4d} runs  requested {asked['hours'][name]:7.2f} GPU-h "
              f"({asked['measured'][name]} from measured epochs)  needed {h:7.2f} GPU-h{mark}")
    print(f"total: {sum(result['runs'].values())} runs, requested {sum(asked['hours'].values()):.2f} GPU-hours, "
          f"needed {sum(result['hours'].values()):.2f} GPU-hours")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
