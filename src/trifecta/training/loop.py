"""The training of one run: epochs of steps on the device, evaluation, snapshots and checkpoints, from where the
run's store says it stopped.

The dataset lives on the training device as uint8; each batch is augmented there and shuffled with a
device-side permutation. Metrics stay on the device during an epoch and are written once per epoch. At each
evaluation epoch the test split is classified by goodness over all labels (every layer, the last layer, the
mean of the last k layers); model snapshots are kept at the snapshot epochs, and periodic resume checkpoints
let a killed run continue where it stopped. An epoch whose loss, goodness or weights are not finite fails the
run: checked at the end of each epoch, the one host sync of an epoch, and named at its first bad step.
"""

import logging

import torch

from trifecta.training import data
from trifecta.training.algorithms import build_trainer
from trifecta.training.evaluate import evaluate
from trifecta.training.recipe import resolve_device, set_seed
from trifecta.training.registry import get_dataset
from trifecta.training.runstate import Diverged

log = logging.getLogger("trifecta.train")
FINITE_METRICS = ("loss", "g_pos", "g_neg")  # step metrics that are always measured (a resting layer has no
# gradient norm: NaN there is no divergence)


def train_epoch(trainer, loader, step_log, stop=lambda: False) -> None:
    """The epoch's remaining steps, metrics into the device tensor step_log[step]; stops early if stop() turns
    true. The trainer sees the step's index in the epoch: the released code's OLU counter restarts every epoch."""
    for images, labels in loader:
        step_log[loader.step] = trainer.train_step(images, labels, loader.step, loader.generator)
        if stop():
            return


def new_step_log(trainer, steps: int, device):
    return torch.empty(steps, trainer.num_layers, len(trainer.step_metrics), device=device)


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


def load_splits(spec) -> tuple[data.Split, data.Split]:
    """The run's train and test splits, reduced to the configured class-stratified subsets."""
    train_split, test_split = data.load_dataset(spec.dataset, spec.data_dir)
    return data.take_subset(train_split, spec.cfg.subset_train), data.take_subset(test_split, spec.cfg.subset_test)


def train_run(spec, state, stop, facts) -> dict:
    """Train `spec` (dataset, arch, algo, seed, cfg, data_dir, device, deterministic) in `state` (a RunState: its store folder) from
    its last checkpoint; `facts(trainer)` gives the run's record what it says about where the run executes.
    `stop()` turns true on SIGTERM or SIGUSR1. Returns metrics.json's content."""
    cfg = spec.cfg
    info, device = get_dataset(spec.dataset), resolve_device(spec.device)
    set_seed(spec.seed, spec.deterministic, device)
    train_split, test_split = load_splits(spec)
    loader = data.DeviceLoader(train_split, info, cfg.batch_size, device, seed=spec.seed, augment=cfg.augment)
    test_loader = data.DeviceLoader(test_split, info, cfg.eval_batch_size, device)
    trainer = build_trainer(spec.algo, info, spec.arch, cfg, device)
    first, partial = state.start(trainer, loader, {**facts(trainer), "n_train": len(loader.labels),
                                                 "n_test": len(test_loader.labels)})
    log.info("run %s on %s (%s): %d parameters, epochs %d..%d of %d", spec.identity_hash, device,
             trainer.recipe.precision, sum(p.numel() for p in trainer.net.parameters()), first, cfg.epochs,
             cfg.epochs)
    for epoch in range(first, cfg.epochs + 1):
        if stop():  # during start-up, or the evaluation or snapshot of the epoch before
            raise state.interrupted(stop.signal, trainer, epoch - 1, resuming_mid_epoch=partial is not None)
        state.begin_epoch()
        trainer.set_lr(cfg.lr_at(epoch - 1))
        if partial is None:
            loader.set_epoch(epoch)
        step_log = new_step_log(trainer, len(loader), device)
        if partial is not None:
            step_log[: len(partial)], partial = partial.to(device), None
        train_epoch(trainer, loader, step_log, stop)
        if loader.step + 1 < len(loader):
            raise state.interrupted(stop.signal, trainer, epoch - 1, loader, step_log)
        first_step = state.iteration
        values = state.end_epoch(epoch, trainer, step_log, cfg.lr_at(epoch - 1))
        if (where := divergence(trainer, values, epoch, first_step)) is not None:
            raise Diverged(where)
        if epoch in cfg.eval_epochs:
            state.evaluation(epoch, evaluate(trainer, test_loader, cfg.last_k), cfg.last_k)
        if epoch in cfg.snapshot_epochs:
            state.save_snapshot(epoch, trainer)
        if epoch == cfg.epochs or (cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0):
            state.save_resume(trainer, epoch)
    return state.finish()
