"""Train one run: `trifecta train --dataset NAME --arch NAME --algo NAME --seed N --out DIR [--set key=value]`.

A run is identified by its dataset, architecture, algorithm, seed, settings, training code (the parsed code of
trifecta/training/) and data files; everything it writes lives in its identity's folder of the run store
(STORE/<identity hash>/, training/runstate.py), and DIR, its run directory, shows that identity's run.json,
eval.csv and ensemble.csv while it trains and every file, metrics.json last, once it completes. An identity
whose store holds a complete run is shown again without training (a reverted setting, a lost run directory).

One process at a time per run directory and per identity: `trifecta train` holds a lease on both for its whole
run (operations/lease.py); a second copy of the job (a restarted workflow resubmits running jobs) waits, names
the holder and then finishes from the first one's results.
"""

import argparse
import contextlib
import filecmp
import functools
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from trifecta.operations import gpus, selftest
from trifecta.operations import store as run_store
from trifecta.planning.paper import ARCH_LABELS
from trifecta.operations.devices import add_device_options, claim_gpus, device_name
from trifecta.operations.lease import Lease, LeaseWaitStopped, enabled as lease_enabled
from trifecta.identity import codehash, runcode
from trifecta.operations import record as provenance
from trifecta.planning.runs import Run
from trifecta.planning.settings_help import settings_help
from trifecta.training.settings import Settings, build_settings, resolved_recipe
from trifecta.training.loop import train_run
from trifecta.training.recipe import resolve_device
from trifecta.training.registry import BASELINES, DATASETS, PRESETS, check_combination
from trifecta.training.rundir import FILES, INDEX, LOGS, OWN_STORE, RECORD, SUMMARY, write_atomic, write_json_atomic
from trifecta.training.runstate import RunState, StopRequest, TrainingInterrupted, now

log = logging.getLogger("trifecta.train")


@dataclass(frozen=True)
class RunSpec(Run):
    """A run (runs.Run: dataset, arch, algo, seed) with where and how to train it."""

    out_dir: Path
    data_dir: Path
    cfg: Settings
    device: str = "auto"
    deterministic: bool = False
    store_dir: Path | None = None  # one folder per identity; default: OUT/store
    settings_file: Path | None = None  # the file given with --settings (its edits make the run dirty)
    preflight: Path | None = None  # a preflight report that must have passed for this code before it trains

    @functools.cached_property
    def code(self) -> runcode.RunCode:
        """The training code this run can execute, analysed once per run (an edit of src/ during training cannot
        mix two analyses)."""
        return runcode.run_code(self.dataset, self.arch, self.algo)

    @functools.cached_property
    def identity(self) -> dict:
        """What determines the run's results: the run, its settings, its numeric recipe (precision resolved on
        the device), the code it can execute and the data files."""
        return {"dataset": self.dataset, "arch": self.arch, "algo": self.algo, "seed": self.seed,
                "settings": self.cfg.identity_dict(), "recipe": resolved_recipe(self.cfg.precision, self.device_type),
                "training_code": self.code.sha256, "data": codehash.data_checksums(self.dataset, self.data_dir)}

    @property
    def device_type(self) -> str:
        return resolve_device(self.device).type

    @functools.cached_property
    def identity_hash(self) -> str:
        """Computed once per run, so an edit of src/ during training cannot mix two code hashes."""
        return codehash.identity_sha256(self.identity)

    @property
    def store(self) -> Path:
        """The identity's folder of the run store."""
        return Path(self.store_dir or Path(self.out_dir) / OWN_STORE) / self.identity_hash


# ---- The run directory ----

class RunView:
    """The run directory: copies of one identity's files (never a mix of two), metrics.json last."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.store: Path | None = None
        self.state: RunState | None = None  # once it exists, the run records its own failures (in the store)

    def show(self, names) -> None:
        """Copy these files of the store, metrics.json last; without it among them, the run directory holds none."""
        self.out.mkdir(parents=True, exist_ok=True)
        if SUMMARY not in names:
            (self.out / SUMMARY).unlink(missing_ok=True)
        for name in sorted(names, key=lambda name: name == SUMMARY):
            if (self.store / name).exists():
                copy_file(self.store / name, self.out / name)

    def bind(self, store: Path) -> None:
        """From now on the run directory shows this identity: a file that is not this identity's goes."""
        self.store = Path(store)
        for name in (SUMMARY, *LOGS):
            mine, shown = self.store / name, self.out / name
            if shown.exists() and not (mine.exists() and filecmp.cmp(mine, shown, shallow=False)):
                shown.unlink()

    @contextlib.contextmanager
    def failure_recorded(self, spec: RunSpec):
        """An error before the run's store has its record (e.g. a missing dataset) still leaves run.json saying
        failed in the run directory, and no metrics.json there: `trifecta status` shows it failed, not pending."""
        started = now()
        try:
            yield
        except (TrainingInterrupted, LeaseWaitStopped):
            raise
        except BaseException as err:  # Ctrl-C included
            if self.state is None or not self.state.record:  # else the store's failed record is shown already
                (self.out / SUMMARY).unlink(missing_ok=True)
                write_json_atomic(self.out / RECORD, {
                    **vars(Run(spec.dataset, spec.arch, spec.algo, spec.seed)), "settings": spec.cfg.identity_dict(),
                    "status": "failed", "phase": "start-up", "error": f"{type(err).__name__}: {err}",
                    "host": provenance.host(), "slurm_job_id": provenance.slurm_job_id(), "started": started,
                    "finished": now(), "epoch_wall_s": {}})
            raise


def copy_file(source: Path, dest: Path) -> None:
    """Copy atomically; a destination with the same bytes is left alone (and its modification time with it)."""
    if dest.exists() and filecmp.cmp(source, dest, shallow=False):
        return
    with open(source, "rb") as src:
        write_atomic(dest, lambda f: shutil.copyfileobj(src, f))


# ---- Training ----

def train(spec: RunSpec) -> dict:
    """Train the run, or show its identity's finished results if its store has them."""
    stop, view = StopRequest(), RunView(spec.out_dir)
    with stop.installed(), Lease(view.out, "run directory", ".lease").held(stop), view.failure_recorded(spec):
        check_combination(spec.algo, spec.arch)
        store = spec.store  # hashes the data files: the identity
        with Lease(store, f"store of identity {spec.identity_hash}").held(stop):
            view.bind(store)
            state = view.state = RunState(spec, store, show=view.show)
            if (summary := state.completed()) is not None:
                view.show(FILES)
                log.info("identity %s is complete in %s: shown in %s without training", spec.identity_hash,
                         store, view.out)
                return summary
            if not (store / INDEX).exists() and (
                    shorter := run_store.continuable(store.parent, spec.identity, spec.cfg)) is not None:
                with Lease(shorter, f"store of identity {shorter.name}").held(stop):
                    state.continue_from(shorter)
            if spec.preflight is not None:
                selftest.ensure_passed(spec.preflight, resolve_device(spec.device), stop)
            with state.failure_recorded():
                summary = train_run(spec, state, stop, facts=functools.partial(facts, spec))
            view.show(FILES)
            return summary


def facts(spec: RunSpec, trainer) -> dict:
    """Where and with what the run executes, for its record (operations/record.py), and whether leases held it."""
    record = provenance.run_record(recipe=trainer.recipe, deterministic=spec.deterministic, code=spec.code,
                                   settings_file=spec.settings_file,
                                   environment_dir=spec.store.parent / "environments", gpu_slots=gpus.current())
    return {**record, "lease": "flock" if lease_enabled() else "off"}


# ---- Command line ----

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta train", description=__doc__.split("\n\n")[0],
                                epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help=", ".join(DATASETS))
    p.add_argument("--arch", required=True, help=", ".join(ARCH_LABELS.values()))
    p.add_argument("--algo", required=True, help=f"{', '.join(PRESETS)}, LOSS-NORM[-olu] (e.g. symba-bn), "
                                                 f"{', '.join(BASELINES)}")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="run directory (shows the run's files)")
    p.add_argument("--data-dir", type=Path, default=Path("resources/data"), help="dataset root")
    p.add_argument("--settings", type=Path, help="YAML file of settings (applied before --set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set epochs=200 --set lr_schedule=0:1e-3,150:1e-4")
    add_device_options(p)
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels (bitwise repeatable on CPU)")
    p.add_argument("--store", type=Path, help="folder with one subfolder per run identity: its checkpoints, "
                                              "snapshots, logs and record (default OUT/store)")
    p.add_argument("--preflight", type=Path, help="a `trifecta selftest` report that must have passed for this code "
                                                  "before the run trains (made again first if it is of other code)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = build_settings(args.settings, args.overrides, args.algo, args.dataset)
    claim_gpus(args)  # before CUDA starts
    spec = RunSpec(args.dataset, args.arch, args.algo, args.seed, args.out, args.data_dir, cfg,
                   device_name(args), args.deterministic, args.store, args.settings, args.preflight)
    try:
        train(spec)
    except (TrainingInterrupted, LeaseWaitStopped) as stopped:
        log.warning("%s", stopped)
        return 143  # the shell's code for SIGTERM: the job did not finish
    return 0
