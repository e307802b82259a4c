"""Time requests from measured epochs: a small grid planned with the SLURM profile against a run store holding
finished runs with known epoch times; each training job's `runtime=` read from the dry run."""

import json
import re

import yaml

from tests.workflow.smk import snakemake
from trifecta.planning.runs import Run
from trifecta.training.settings import resolved_recipe, resolve_settings

# 100 epochs each: CIFAR-10 TFF/s and VFF/s, MNIST TFF/s.
RUNS = [{"name": "cifar", "datasets": ["cifar10"], "archs": ["s"], "algos": ["tff", "vff"], "seeds": [0, 1],
         "settings": {"epochs": 100}},
        {"name": "digits", "datasets": ["mnist"], "archs": ["s"], "algos": ["tff"], "seeds": [0],
         "settings": {"epochs": 100}}]


def plan(workdir, bin_dir, store, **resources) -> dict[str, int]:
    """Each training job's runtime (minutes) in `snakemake --profile slurm -n` of the grid over config.yaml."""
    overlay = {"store_dir": str(store), "runs": RUNS, "resources": {"runtime_margin": 1.5, **resources}}
    (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    result = snakemake(workdir, "--profile", "slurm", "-n", "--configfile", "overlay.yaml", bin_dir=bin_dir)
    text = result.stdout + result.stderr
    jobs = re.findall(r"output: results/train/(\S+)/metrics\.json\n(?:    .*\n)*?    resources: .*?\bruntime=(\d+)",
                      text)
    return {run: int(minutes) for run, minutes in jobs}


def finish(store, run: Run, device: str, seconds: float, complete: bool = True) -> None:
    """A store folder as a finished run of the grid leaves it: its identity and epoch times, metrics.json last."""
    config = json.loads(json.dumps(resolve_settings({"epochs": 100}, run.algo, run.dataset).identity_dict()))
    folder = store / f"{run.id.replace('/', '_')}_{device}"
    folder.mkdir(parents=True)
    record = {**vars(run), "settings": config, "recipe": resolved_recipe("auto", device),
              "status": "complete" if complete else "running", "epoch_wall_s": {str(e): seconds for e in range(1, 101)}}
    (folder / "run.json").write_text(json.dumps(record))
    if complete:
        (folder / "metrics.json").write_text("{}")


def test_an_empty_store_asks_for_the_configs_estimates(workflow_copy, tmp_path):
    """10 min start-up + 100 epochs x 0.05 min (s) x the dataset's size relative to CIFAR-10 (MNIST: 1.2)."""
    workdir, bin_dir = workflow_copy
    runtimes = plan(workdir, bin_dir, tmp_path / "store")
    assert runtimes == {"cifar10/s/tff/seed0": 15, "cifar10/s/tff/seed1": 15, "cifar10/s/vff/seed0": 15,
                        "cifar10/s/vff/seed1": 15, "mnist/s/tff/seed0": 16}


def test_finished_runs_set_the_requests_of_their_kind_on_their_device(workflow_copy, tmp_path):
    """A finished TFF/s run on a GPU at 6 s per epoch: both TFF/s jobs (results/train holds neither run) ask for
    10 + 100 x 0.1 min x 1.5 = 25 min; VFF/s, with no finished run, takes the slowest other algorithm on
    CIFAR-10/s and the GPU (SymBa, 12 s: 40 min); a CPU run at 600 s per epoch and a VFF run still running are
    not used; MNIST keeps its estimate. On the CPU (gpu: 0) the CPU run sets TFF/s: 10 + 100 x 10 min x 1.5."""
    workdir, bin_dir = workflow_copy
    store = tmp_path / "store"
    finish(store, Run("cifar10", "s", "tff", 0), "cuda", 6.0)
    finish(store, Run("cifar10", "s", "symba-ln", 0), "cuda", 12.0)
    finish(store, Run("cifar10", "s", "tff", 0), "cpu", 600.0)
    finish(store, Run("cifar10", "s", "vff", 1), "cuda", 1.0, complete=False)
    runtimes = plan(workdir, bin_dir, store)
    assert runtimes == {"cifar10/s/tff/seed0": 25, "cifar10/s/tff/seed1": 25, "cifar10/s/vff/seed0": 40,
                        "cifar10/s/vff/seed1": 40, "mnist/s/tff/seed0": 16}
    on_cpu = plan(workdir, bin_dir, store, gpu=0)
    assert on_cpu["cifar10/s/tff/seed1"] == 10 + 1500 and on_cpu["cifar10/s/vff/seed0"] == 10 + 1500
