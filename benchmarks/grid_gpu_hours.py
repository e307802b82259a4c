"""Estimate the GPU-hours of a workflow config's training grid from measured epoch times.

    python benchmarks/grid_gpu_hours.py [--config config.yaml] [--overlay FILE.yaml] [--epoch-times FILE.json]

Epoch times come from `benchmarks/epoch_time.py --json FILE` run on the target GPU (keys
train_epoch_s_tff_s, eval_s_tff_s, train_epoch_s_tff_d, eval_s_tff_d, train_epoch_s_bp_d); without a file,
the figures measured for a GPU-resident bf16 pipeline on one H200 (issue 7) are used. A run costs
epochs x train epoch x (training images / 50,000) + evaluations x eval time x (test images / 10,000) x
(classes / 10). FCN, tiny-network and PEPITA epochs are not benchmarked: they are estimated from the FLOP
ratio to the shallow CNN, with a floor for small-step launch overhead, and marked as estimates.
"""

import argparse
import itertools
import json
from collections import defaultdict
from pathlib import Path

import yaml

# Seconds on one H200 with data and augmentation on the GPU (issue 7's table).
H200_SECONDS = {"train_epoch_s_tff_s": 0.86, "eval_s_tff_s": 0.34, "train_epoch_s_tff_d": 1.53,
                "eval_s_tff_d": 0.64, "train_epoch_s_bp_d": 0.76}
# (train images, test images, classes)
SIZES = {"mnist": (60_000, 10_000, 10), "fmnist": (60_000, 10_000, 10), "svhn": (73_257, 26_032, 10),
         "cifar10": (50_000, 10_000, 10), "cifar100": (50_000, 10_000, 100), "mnist5k": (4_000, 1_000, 10)}
# Estimated (train epoch, eval) seconds of the unbenchmarked networks: the FCN has ~1/10 of the shallow CNN's
# FLOPs, the tiny nets less; 0.3 s is a floor for ~100 steps of launch-bound work, PEPITA has 782 steps.
ESTIMATES = {("f", "ff"): (0.3, 0.1), ("t", "ff"): (0.3, 0.1), ("f", "fa"): (0.3, 0.05),
             ("t", "fa"): (0.3, 0.05), ("t", "pep"): (2.0, 0.05), ("s", "bp"): (0.5, 0.05)}


def expand_runs(config: dict):
    """(entry name, dataset, arch, algo, seed, settings) for every run of the grid, duplicates merged."""
    seen = {}
    for entry in config["runs"]:
        for d, a, al, s in itertools.product(entry["datasets"], entry["archs"], entry["algos"], entry["seeds"]):
            seen.setdefault((d, a, al, s), (entry["name"], entry.get("settings", {})))
    return [(name, *key, settings) for key, (name, settings) in seen.items()]


def epoch_seconds(arch: str, algo: str, times: dict) -> tuple[float, float, bool]:
    """(train epoch, evaluation, measured?) seconds on CIFAR-10-sized data."""
    family = algo if algo in ("bp", "fa", "pep") else "ff"
    if family == "ff" and arch in ("s", "d"):
        return times[f"train_epoch_s_tff_{arch}"], times[f"eval_s_tff_{arch}"], True
    if family == "bp" and arch == "d":
        return times["train_epoch_s_bp_d"], 0.05, True
    return (*ESTIMATES[(arch, family)], False)


def estimate(config: dict, times: dict) -> dict:
    hours, runs, estimated = defaultdict(float), defaultdict(int), set()
    for name, dataset, arch, algo, _, settings in expand_runs(config):
        n_train, n_test, classes = SIZES[dataset]
        train_s, eval_s, measured = epoch_seconds(arch, algo, times)
        epochs = settings.get("epochs", 100)
        evals = len(set(settings.get("eval_epochs", [])) | {epochs})
        seconds = epochs * train_s * n_train / 50_000 + evals * eval_s * n_test / 10_000 * classes / 10
        hours[name] += seconds / 3600
        runs[name] += 1
        if not measured:
            estimated.add(name)
    return {"hours": dict(hours), "runs": dict(runs), "estimated": sorted(estimated)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", type=Path, default=Path("config.yaml"))
    p.add_argument("--overlay", type=Path, help="a --configfile overlay (replaces `runs`)")
    p.add_argument("--epoch-times", type=Path, help="JSON written by benchmarks/epoch_time.py on the target GPU")
    args = p.parse_args(argv)
    config = yaml.safe_load(args.config.read_text())
    if args.overlay:
        config.update(yaml.safe_load(args.overlay.read_text()))
    times = dict(H200_SECONDS)
    source = "H200 figures of issue 7"
    if args.epoch_times:
        measured = json.loads(args.epoch_times.read_text())
        times.update({k: measured[k] for k in H200_SECONDS if k in measured})
        source = f"{measured.get('device', '?')} ({args.epoch_times})"
    result = estimate(config, times)
    print(f"epoch times: {source}")
    for name, h in result["hours"].items():
        mark = " (estimated epoch time)" if name in result["estimated"] else ""
        print(f"  {name:24s} {result['runs'][name]:4d} runs {h:7.2f} GPU-h{mark}")
    print(f"total: {sum(result['runs'].values())} runs, {sum(result['hours'].values()):.2f} GPU-hours")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
