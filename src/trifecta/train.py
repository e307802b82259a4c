"""Train one run: `trifecta train --dataset NAME --arch NAME --algo NAME --seed N --out DIR [--set key=value]`.

The dataset lives on the training device as uint8; each batch is augmented there and shuffled with a
device-side permutation. Metrics stay on the device during an epoch and are written once per epoch. At each
evaluation epoch the test split is classified by goodness over all labels (every layer, the last layer, the
mean of the last k layers); model snapshots are kept at the snapshot epochs, and periodic resume
checkpoints let a killed run continue where it stopped. An epoch whose loss, goodness or weights are not
finite fails the run.

Everything the run writes belongs to its identity and lives in STORE/<identity hash>/ (runstate.py); DIR shows
that identity's run.json, steps.csv, eval.csv, ensemble.csv and, written last, metrics.json.
"""

import argparse
import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from trifecta import codehash, data, provenance
from trifecta.algorithms import build_trainer
from trifecta.config import TrainConfig, build_config, settings_help
from trifecta.evaluate import evaluate
from trifecta.recipe import add_device_options, claim_gpus, device_name, resolve_device
from trifecta.registry import ARCHS, BASELINES, DATASETS, PRESETS, Run, check_combination, get_dataset
from trifecta.lease import Lease, LeaseWaitStopped
from trifecta.runstate import Diverged, RunState, StopRequest, TrainingInterrupted

log = logging.getLogger("trifecta.train")


@dataclass(frozen=True)
class RunSpec(Run):
    """A run (registry.Run: dataset, arch, algo, seed) with where and how to train it."""

    out_dir: Path
    data_dir: Path
    cfg: TrainConfig
    device: str = "auto"
    deterministic: bool = False
    store_dir: Path | None = None  # one folder per identity; default: OUT/store
    config_file: Path | None = None  # the settings file given with --config (its edits make the run dirty)

    @functools.cached_property
    def identity(self) -> dict:
        """What determines the run's results: the run, its settings, the training code and the data files."""
        return {"dataset": self.dataset, "arch": self.arch, "algo": self.algo, "seed": self.seed,
                "config": self.cfg.identity_dict(), "training_code": codehash.stage_hash("training"),
                "data": data.dataset_checksums(self.dataset, self.data_dir)}

    @functools.cached_property
    def identity_hash(self) -> str:
        """Computed once per run, so an edit of src/ during training cannot mix two code hashes."""
        return codehash.identity_sha256(self.identity)


# ---- Training ----

def train_epoch(trainer, loader, step_log, stop=lambda: False) -> None:
    """The epoch's remaining steps, metrics into the device tensor step_log[step]; stops early if stop() turns
    true. The trainer sees the step's index in the epoch: the released code's OLU counter restarts every epoch."""
    for images, labels in loader:
        step_log[loader.step] = trainer.train_step(images, labels, loader.step, loader.generator)
        if stop():
            return


def new_step_log(trainer, steps: int, device):
    return torch.empty(steps, trainer.num_layers, len(trainer.step_metrics), device=device)


FINITE_METRICS = ("loss", "g_pos", "g_neg")  # step metrics that are always measured (a resting layer has no
# gradient norm: NaN there is no divergence)


def divergence(trainer, values: torch.Tensor, epoch: int, first_step: int) -> dict | None:
    """Where an epoch first went non-finite: a step metric of FINITE_METRICS (values: the epoch's step log on the
    host) or, after the epoch, a weight or running statistic of the network; None if nowhere."""
    columns = [i for i, name in enumerate(trainer.step_metrics) if name in FINITE_METRICS]
    bad = ~torch.isfinite(values[..., columns])
    if bad.any():
        step, layer, column = bad.nonzero()[0].tolist()
        return {"epoch": epoch, "step": first_step + step, "layer": layer + 1,
                "what": trainer.step_metrics[columns[column]], "value": str(values[step, layer, columns[column]].item())}
    tensors = [(n, t) for n, t in [*trainer.net.named_parameters(), *trainer.net.named_buffers()]
               if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for _, t in tensors]).cpu()
    if not finite.all():
        name, tensor = tensors[int((~finite).nonzero()[0])]
        value = tensor[~torch.isfinite(tensor)].flatten()[0].item()
        return {"epoch": epoch, "what": f"weight {name}", "value": str(value)}
    return None


def load_splits(spec: RunSpec) -> tuple[data.Split, data.Split]:
    """The run's train and test splits, reduced to the configured class-stratified subsets."""
    train_split, test_split = data.load_dataset(spec.dataset, spec.data_dir)
    return data.take_subset(train_split, spec.cfg.subset_train), data.take_subset(test_split, spec.cfg.subset_test)


def train(spec: RunSpec) -> dict:
    """Train the run, or show its identity's finished results if its store has them. One process at a time
    per run directory and per identity: a second one waits for the first (leases, see lease.py)."""
    stop, run = StopRequest(), RunState(spec)
    with stop.installed(), Lease(run.out, "run directory", ".lease").held(stop), run.failure_recorded():
        check_combination(spec.algo, spec.arch)
        with run.identity_held(stop):
            if (summary := run.completed()) is not None:
                run.publish()
                log.info("identity %s is complete in %s: shown in %s without training", spec.identity_hash,
                         run.store, run.out)
                return summary
            return train_run(spec, run, stop)


def train_run(spec: RunSpec, run: RunState, stop: StopRequest) -> dict:
    """The training of a run whose store this process holds, from its last checkpoint."""
    cfg = spec.cfg
    info, device = get_dataset(spec.dataset), resolve_device(spec.device)
    provenance.set_seed(spec.seed, spec.deterministic, device)
    train_split, test_split = load_splits(spec)
    loader = data.DeviceLoader(train_split, info, cfg.batch_size, device, seed=spec.seed, augment=cfg.augment)
    test_loader = data.DeviceLoader(test_split, info, 8192, device)
    trainer = build_trainer(spec.algo, info, spec.arch, cfg, device)
    facts = provenance.run_record(recipe=trainer.recipe, deterministic=spec.deterministic,
                                  training_code=spec.identity["training_code"], config_file=spec.config_file,
                                  data_checksums=spec.identity["data"], environment_dir=run.store.parent / "environments")
    first, partial = run.start(trainer, loader, {**facts, "n_train": len(loader.labels),
                                                 "n_test": len(test_loader.labels)})
    log.info("run %s on %s (%s): %d parameters, epochs %d..%d of %d", spec.identity_hash, facts["device"]["name"],
             trainer.recipe.precision, sum(p.numel() for p in trainer.net.parameters()), first, cfg.epochs,
             cfg.epochs)
    for epoch in range(first, cfg.epochs + 1):
        if stop():  # during start-up, or the evaluation or snapshot of the epoch before
            raise run.interrupted(stop.signal, trainer, epoch - 1, resuming_mid_epoch=partial is not None)
        run.begin_epoch()
        trainer.set_lr(cfg.lr_at(epoch - 1))
        if partial is None:
            loader.set_epoch(epoch)
        step_log = new_step_log(trainer, len(loader), device)
        if partial is not None:
            step_log[: len(partial)], partial = partial.to(device), None
        train_epoch(trainer, loader, step_log, stop)
        if loader.step + 1 < len(loader):
            raise run.interrupted(stop.signal, trainer, epoch - 1, loader, step_log)
        first_step = run.iteration
        values = run.end_epoch(epoch, trainer, step_log, cfg.lr_at(epoch - 1))
        if (where := divergence(trainer, values, epoch, first_step)) is not None:
            raise Diverged(where)
        if epoch in cfg.eval_epochs:
            run.evaluation(epoch, evaluate(trainer, test_loader, cfg.last_k), cfg.last_k)
        if epoch in cfg.snapshot_epochs:
            run.save_snapshot(epoch, trainer)
        if epoch == cfg.epochs or (cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0):
            run.save_resume(trainer, epoch)
    return run.finish()


# ---- Command line ----

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta train", description=__doc__.split("\n\n")[0],
                                epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help=", ".join(DATASETS))
    p.add_argument("--arch", required=True, help=", ".join(f"{a.name} ({a.label})" for a in ARCHS.values()))
    p.add_argument("--algo", required=True, help=f"{', '.join(PRESETS)}, LOSS-NORM[-olu] (e.g. symba-bn), "
                                                 f"{', '.join(BASELINES)}")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="run directory (shows the run's files)")
    p.add_argument("--data-dir", type=Path, default=Path("resources/data"), help="dataset root")
    p.add_argument("--config", type=Path, help="YAML file of settings (applied before --set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set epochs=200 --set lr_schedule=0:1e-3,150:1e-4")
    add_device_options(p)
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels (bitwise repeatable on CPU)")
    p.add_argument("--store", type=Path, help="folder with one subfolder per run identity: its checkpoints, "
                                              "snapshots, logs and record (default OUT/store)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = build_config(args.config, args.overrides, args.algo, args.dataset)
    claim_gpus(args)  # before CUDA starts
    spec = RunSpec(args.dataset, args.arch, args.algo, args.seed, args.out, args.data_dir, cfg,
                   device_name(args), args.deterministic, args.store, args.config)
    try:
        train(spec)
    except (TrainingInterrupted, LeaseWaitStopped) as stopped:
        log.warning("%s", stopped)
        return 143  # the shell's code for SIGTERM: the job did not finish
    return 0
