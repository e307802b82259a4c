"""A training job's time request (SLURM --time) from the epoch times of the run store's finished runs. No torch.

    times = epoch_times(store_dir)              # read the store once per planning
    epoch_minutes(grid, run, times)             # (minutes per epoch, where they come from) for a run's job
    train_minutes(grid, run, times, attempt)    # its --time in whole minutes

A job's minutes per epoch come from the first of:
  MEASURED     the slowest finished run (its mean of run.json's epoch_wall_s) of the same dataset, architecture and
               algorithm, times resources.runtime_margin
  OTHER_ALGO   the slowest finished run of the same dataset and architecture with any other algorithm, times the
               margin (algorithms differ in cost per epoch, so this is a guess; the margin and a retry cover it)
  ESTIMATE     resources.minutes_per_epoch (or the grid entry's) x the dataset's size relative to CIFAR-10
Measured runs count only on the job's device type and numeric precision (a CPU epoch never sets a GPU job's time)
and with the job's EPOCH_COST settings. --time = (startup_minutes + epochs x minutes per epoch) x the attempt,
rounded up: a retry after a time limit asks for more and resumes from the checkpoint. The workflow
(workflow/rules/common.smk), `trifecta status` and benchmarks/grid_gpu_hours.py ask here.
"""

import math
from pathlib import Path

from trifecta.planning.grid import Grid
from trifecta.planning.runs import Run
from trifecta.training.settings import resolved_recipe
from trifecta.training.registry import get_dataset
from trifecta.training.rundir import RECORD, SUMMARY, read_json

MEASURED, OTHER_ALGO, ESTIMATE = "measured", "other_algo", "estimate"
# The settings that change what one epoch computes (network width, steps per epoch, examples, PEPITA's hidden
# layer): a run of another value times another workload. The rest change numbers, not the work.
EPOCH_COST = ("width", "batch_size", "subset_train", "pep_hidden")


def _kind(device: str, precision: str, dataset: str, arch: str, config: dict) -> tuple:
    """What a finished run's epoch time stands for: device type, precision, dataset, architecture, EPOCH_COST."""
    return (device, precision, dataset, arch, *(config.get(key) for key in EPOCH_COST))


def epoch_times(store) -> dict[tuple, dict[str, float]]:
    """{kind: {algo: seconds per epoch of its slowest finished run}} over the store's complete identities
    (run.json says complete and metrics.json, written last, is there); unreadable records are skipped."""
    times = {}
    for path in sorted(Path(store).glob(f"*/{RECORD}")):
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        seconds = [float(s) for s in (record.get("epoch_wall_s") or {}).values()]
        recipe = record.get("recipe") or {}
        if record.get("status") != "complete" or not (path.parent / SUMMARY).exists() or not seconds \
                or not recipe.get("device"):
            continue
        kind = _kind(recipe["device"], recipe.get("precision"), record.get("dataset"), record.get("arch"),
                     record.get("settings") or {})
        slowest = times.setdefault(kind, {})
        slowest[record.get("algo")] = max(slowest.get(record.get("algo"), 0.0), sum(seconds) / len(seconds))
    return times


def job_device(grid: Grid) -> str:
    """The device type of the grid's training jobs: the CPU when they get no GPU, else CUDA."""
    return grid.device() or "cuda"


def epoch_minutes(grid: Grid, run: Run, times: dict) -> tuple[float, str]:
    """Minutes per epoch of a run's job and their source (MEASURED, OTHER_ALGO or ESTIMATE)."""
    resources, cfg, device = grid.config["resources"], grid.settings(run), job_device(grid)
    precision = resolved_recipe(cfg.precision, device)["precision"]
    same = times.get(_kind(device, precision, run.dataset, run.arch, cfg.identity_dict()), {})
    if run.algo in same:
        return same[run.algo] / 60 * resources["runtime_margin"], MEASURED
    if same:  # the slowest other algorithm: the closest guess that errs towards asking more
        return max(same.values()) / 60 * resources["runtime_margin"], OTHER_ALGO
    per_epoch = grid.runs[run].get("resources", {}).get("minutes_per_epoch") or resources["minutes_per_epoch"][run.arch]
    scale = math.ceil(get_dataset(run.dataset).train_images / 50_000 * 10) / 10  # to a tenth of CIFAR-10's 50,000
    return per_epoch * scale, ESTIMATE


def train_minutes(grid: Grid, run: Run, times: dict, attempt: int = 1) -> int:
    """SLURM --time of a run's job, whole minutes: (start-up + epochs x minutes per epoch) x the attempt."""
    per_epoch, _ = epoch_minutes(grid, run, times)
    minutes = (grid.config["resources"]["startup_minutes"] + grid.settings(run).epochs * per_epoch) * attempt
    return math.ceil(round(minutes, 6))  # 500 x 0.1 x 1.5 is 75.00000000000001 in floats: not 76 minutes
