"""Time requests from measured epochs (planning/runtimes.py): a fake run store of finished runs with known epoch times,
and the minutes a grid's jobs ask for from it."""

import json
from pathlib import Path

import pytest

from trifecta.planning import runtimes
from trifecta.planning.grid import Grid
from trifecta.planning.configfile import load_config
from trifecta.planning.runs import Run
from trifecta.training.settings import resolved_recipe, resolve_settings

CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
RUNS = [{"name": "cifar", "datasets": ["cifar10"], "archs": ["s"], "algos": ["tff", "vff"], "seeds": [0],
         "settings": {"epochs": 100}},
        {"name": "digits", "datasets": ["mnist"], "archs": ["s"], "algos": ["tff"], "seeds": [0],
         "settings": {"epochs": 100}}]


def make_grid(gpu=1, margin=1.5, runs=RUNS) -> Grid:
    config = load_config([CONFIG])
    config["resources"].update(gpu=gpu, runtime_margin=margin)
    return Grid.from_config({**config, "runs": runs})


def finish(store: Path, run: Run, device: str, seconds: list[float], *, complete=True, **settings):
    """A store folder as a finished (or still running) run leaves it: run.json with its identity, recipe and epoch
    times, and metrics.json (written last) when complete."""
    config = json.loads(json.dumps(resolve_settings({"epochs": 100}, run.algo, run.dataset).identity_dict()))
    identity = {**vars(run), "settings": {**config, **settings}, "recipe": resolved_recipe("auto", device)}
    folder = store / f"{run.id.replace('/', '_')}_{device}_{len(list(store.glob('*')))}"
    folder.mkdir(parents=True)
    record = {**identity, "status": "complete" if complete else "running",
              "epoch_wall_s": {str(i + 1): s for i, s in enumerate(seconds)}}
    (folder / "run.json").write_text(json.dumps(record))
    if complete:
        (folder / "metrics.json").write_text("{}")


TFF, VFF, MNIST = Run("cifar10", "s", "tff", 0), Run("cifar10", "s", "vff", 0), Run("mnist", "s", "tff", 0)


def test_an_empty_store_gives_the_configs_estimates(tmp_path):
    """Without finished runs: start-up + epochs x minutes per epoch x the dataset's size relative to CIFAR-10
    (MNIST's 60,000 images: 1.2), times the attempt; no margin on an estimate."""
    grid = make_grid()
    times = runtimes.epoch_times(tmp_path / "store")  # not there yet
    assert runtimes.epoch_minutes(grid, TFF, times) == (0.05, runtimes.ESTIMATE)
    assert runtimes.train_minutes(grid, TFF, times) == 10 + 5
    assert runtimes.train_minutes(grid, MNIST, times) == 10 + 6
    assert runtimes.train_minutes(grid, MNIST, times, attempt=2) == 32


def test_a_finished_run_of_the_same_algorithm_and_device_sets_the_request(tmp_path):
    """The slowest finished run's mean epoch time, times the margin, plus start-up, rounded up to whole minutes."""
    grid, store = make_grid(), tmp_path / "store"
    finish(store, Run("cifar10", "s", "tff", 7), "cuda", [5.0, 7.0])  # 6 s per epoch
    finish(store, Run("cifar10", "s", "tff", 8), "cuda", [9.0, 9.0])  # the slowest: 9 s
    times = runtimes.epoch_times(store)
    assert runtimes.epoch_minutes(grid, TFF, times) == (pytest.approx(9 / 60 * 1.5), runtimes.MEASURED)
    assert runtimes.train_minutes(grid, TFF, times) == 10 + 23  # 100 x 0.225 = 22.5
    assert runtimes.train_minutes(grid, TFF, times, attempt=3) == 98  # 3 x 32.5, rounded up
    assert runtimes.train_minutes(make_grid(margin=1.0), TFF, times) == 10 + 15


def test_an_algorithm_without_finished_runs_takes_the_slowest_other(tmp_path):
    grid, store = make_grid(), tmp_path / "store"
    finish(store, Run("cifar10", "s", "tff", 7), "cuda", [6.0])
    finish(store, Run("cifar10", "s", "symba-ln", 0), "cuda", [12.0])  # not in the grid
    finish(store, Run("cifar10", "s", "vff", 0), "cuda", [1.0], complete=False)  # still running: not used
    times = runtimes.epoch_times(store)
    assert runtimes.epoch_minutes(grid, VFF, times) == (pytest.approx(12 / 60 * 1.5), runtimes.OTHER_ALGO)
    assert runtimes.train_minutes(grid, VFF, times) == 10 + 30
    assert runtimes.epoch_minutes(grid, MNIST, times)[1] == runtimes.ESTIMATE  # another dataset: the estimate


def test_epoch_times_of_another_device_or_epoch_cost_are_not_used(tmp_path):
    """A CPU epoch never sets a GPU job's time, nor the other way round; nor does a run of another width, batch
    size or training subset (each changes what an epoch computes)."""
    grid, store = make_grid(), tmp_path / "store"
    finish(store, Run("cifar10", "s", "tff", 7), "cpu", [600.0])
    finish(store, Run("cifar10", "s", "tff", 8), "cuda", [1.0], width=0.25)
    finish(store, Run("cifar10", "s", "tff", 9), "cuda", [1.0], batch_size=2048)
    finish(store, Run("cifar10", "s", "tff", 10), "cuda", [1.0], subset_train=512)
    times = runtimes.epoch_times(store)
    assert runtimes.epoch_minutes(grid, TFF, times)[1] == runtimes.ESTIMATE
    on_cpu = make_grid(gpu=0)
    assert runtimes.epoch_minutes(on_cpu, TFF, times) == (pytest.approx(10 * 1.5), runtimes.MEASURED)
    assert runtimes.train_minutes(on_cpu, TFF, times) == 10 + 1500
    finish(store, Run("cifar10", "s", "tff", 11), "cuda", [3.0])
    assert runtimes.epoch_minutes(on_cpu, TFF, runtimes.epoch_times(store))[1] == runtimes.MEASURED  # still 10 min
    assert runtimes.epoch_minutes(on_cpu, TFF, runtimes.epoch_times(store))[0] == pytest.approx(15)


def test_unreadable_or_incomplete_records_are_skipped(tmp_path):
    grid, store = make_grid(), tmp_path / "store"
    finish(store, Run("cifar10", "s", "tff", 7), "cuda", [6.0])
    (store / "broken").mkdir()
    (store / "broken/run.json").write_text("{trunc")
    (store / "broken/metrics.json").write_text("{}")
    (store / "no_times").mkdir()
    (store / "no_times/run.json").write_text(json.dumps({"status": "complete", "epoch_wall_s": {}}))
    (store / "no_times/metrics.json").write_text("{}")
    assert runtimes.epoch_minutes(grid, TFF, runtimes.epoch_times(store)) == (pytest.approx(0.15), runtimes.MEASURED)


def test_an_entrys_own_estimate_is_its_fallback(tmp_path):
    runs = [{**RUNS[0], "resources": {"minutes_per_epoch": 0.3}}]
    assert runtimes.train_minutes(make_grid(runs=runs), TFF, {}) == 10 + 30
