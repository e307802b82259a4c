"""A run's state in its identity's store folder: its record (run.json), tidy logs, checkpoints, snapshots and,
written last, metrics.json; resume, divergence and signals.

Everything a run writes belongs to its identity (dataset, architecture, algorithm, seed, settings, training
code, data): the store folder is named by the identity's hash, so a changed setting never resumes from another
identity's state. Each time the record or an evaluation is written, `show` is told which files changed (the
run directory shows them: operations/train.py).

A run that starts again resumes from its identity's newest resume checkpoint that verifies, and its logs are
cut back to that epoch; with none (none written yet, every one corrupt) it starts at epoch 0 with empty logs.
SIGTERM (SLURM's warning before a time limit, a preemption, scancel) or SIGUSR1 make it save and stop: in an
epoch, after the current step (the partial epoch is checkpointed); during start-up, evaluation or a snapshot,
at the end of that epoch. A non-finite loss, goodness or weight fails the run (run.json says where).
"""

import contextlib
import datetime
import logging
import signal
import time
from pathlib import Path

import torch

from trifecta.training import checkpoint
from trifecta.training.rundir import (ENSEMBLE, ENSEMBLE_COLUMNS, EVAL, EVAL_COLUMNS, INDEX, LOGS, RECORD, STEP_KEYS,
                                      STEPS,
                                      SUMMARY, append_rows, copy_rows, fmt, read_json, summarize, truncate_rows,
                                      write_json_atomic)

log = logging.getLogger("trifecta.train")
LIVE = (RECORD, EVAL, ENSEMBLE)  # what the run directory shows while the run trains


def now() -> str:
    """The time of day of the record's events, UTC."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ---- Signals and failures ----

class TrainingInterrupted(RuntimeError):
    """SIGTERM or SIGUSR1 arrived; the run saved what it had and stopped."""


class Diverged(RuntimeError):
    """A loss, goodness or weight is not finite: the run cannot give a number."""

    def __init__(self, where: dict):
        self.where = where
        place = f"epoch {where['epoch']}" + (f", step {where['step']}" if "step" in where else "") + \
            (f", layer {where['layer']}" if "layer" in where else "")
        super().__init__(f"diverged at {place}: {where['what']} = {where['value']}")


class StopRequest:
    """Records SIGTERM and SIGUSR1 while installed (the whole of a run, start-up included)."""

    def __init__(self):
        self.signal = None

    def __call__(self) -> bool:
        return self.signal is not None

    @contextlib.contextmanager
    def installed(self):
        def handle(signum, _frame):
            self.signal = signum
        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGUSR1)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


# ---- The run ----

class RunState:
    """The store folder of one run's identity (spec: a RunSpec of operations/train.py); `show(names)` is told when
    files the run directory shows while the run trains (LIVE) have changed."""

    def __init__(self, spec, store: Path, show=lambda names: None):
        self.spec, self.store, self.show = spec, Path(store), show
        self.record: dict = {}
        self.iteration = 0  # steps done before the current epoch
        self.epoch_start = 0.0

    def completed(self) -> dict | None:
        """This identity's metrics.json, if its store holds a complete run (else None)."""
        path = self.store / SUMMARY
        if not path.exists():
            return None
        try:
            summary = read_json(path)
        except ValueError as err:
            log.warning("%s: finishing the run again from its last checkpoint", err)
            return None
        if summary.get("identity_sha256") != self.spec.identity_hash or not all(
                (self.store / name).exists() for name in (RECORD, *LOGS)):
            log.warning("%s does not describe this identity's complete files: finishing the run again", path)
            return None
        return summary

    def start(self, trainer, loader, facts: dict) -> tuple[int, torch.Tensor | None]:
        """Resume from the identity's newest verified checkpoint or start afresh; write run.json. Returns the
        first epoch to train and, for an epoch a signal interrupted, the step metrics of its steps done so far."""
        self.store.mkdir(parents=True, exist_ok=True)
        spec = self.spec
        self.record = {**spec.identity, "identity_sha256": spec.identity_hash, "status": "running", **facts,
                       "store": str(self.store), "started": now(), "epoch_wall_s": {}, "resumes": [],
                       "snapshots": {}}
        loaded = checkpoint.load_latest(self.store) if (self.store / INDEX).exists() else None
        if loaded is None:  # epoch 0, for whatever reason: the logs of an earlier attempt must go
            for name in (SUMMARY, *LOGS):
                (self.store / name).unlink(missing_ok=True)
            self.write()
            return 1, None
        state, path = loaded
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["rng_cpu"])
        epoch, self.iteration = state["epoch"], state["iteration"]
        previous = read_json(self.store / RECORD) if (self.store / RECORD).exists() else {}
        for key in ("started", "resumes", "snapshots", "continued_from"):
            if key in previous:
                self.record[key] = previous[key]
        self.record["epoch_wall_s"] = {e: s for e, s in previous.get("epoch_wall_s", {}).items() if int(e) <= epoch}
        self.record["resumes"].append({"from_epoch": epoch, "checkpoint": path.name, "at": now(),
                                       "host": self.record.get("host"), "slurm_job_id": self.record.get("slurm_job_id")})
        (self.store / SUMMARY).unlink(missing_ok=True)
        for name in LOGS:
            truncate_rows(self.store / name, epoch)
        self.write()
        partial = state.get("partial")
        if partial is None:
            log.info("resuming from %s: %d epochs done", path, epoch)
            return epoch + 1, None
        loader.load_state_dict(partial["loader"])
        log.info("resuming from %s: %d epochs and %d steps done", path, epoch, loader.step + 1)
        return epoch + 1, partial["step_log"]

    def continue_from(self, shorter: Path) -> None:
        """Start this identity where a finished run of `shorter` (its store folder; cfg.continues() holds) ended:
        its final resume checkpoint, its steps, the evaluations and snapshots this run asks for up to its end, and
        its epoch times. Training on is then a resume, and gives the files of training from epoch 1."""
        summary, record, cfg = read_json(shorter / SUMMARY), read_json(shorter / RECORD), self.spec.cfg
        end = summary["identity"]["settings"]["epochs"]
        index = checkpoint.read_index(shorter)
        name = next(n for n, e in index.items() if e["kind"] == "resume" and (e["epoch"], e["step"]) == (end, 0))
        state = checkpoint.load_checkpoint(shorter / name, index[name]["sha256"])
        checkpoint.save_checkpoint(self.store, "resume", end, {**state, "identity": self.spec.identity})
        snapshots = {}
        for epoch in (e for e in cfg.snapshot_epochs if e <= end):
            kept = record["snapshots"][str(epoch)]
            weights = checkpoint.load_checkpoint(shorter / Path(kept["path"]).name, kept["sha256"])
            path, sha256 = checkpoint.save_checkpoint(self.store, "snapshot", epoch,
                                                      {**weights, "identity": self.spec.identity})
            snapshots[str(epoch)] = {"path": str(path), "sha256": sha256}
        copy_rows(shorter / STEPS, self.store / STEPS, lambda epoch: True)
        for name in (EVAL, ENSEMBLE):
            copy_rows(shorter / name, self.store / name, lambda epoch: epoch in cfg.eval_epochs)
        write_json_atomic(self.store / RECORD, {
            "started": now(), "resumes": [], "snapshots": snapshots, "epoch_wall_s": record.get("epoch_wall_s", {}),
            "continued_from": {"identity_sha256": summary["identity_sha256"], "epochs": end, "store": str(shorter)}})
        log.info("continuing identity %s (%d epochs) to %d epochs", summary["identity_sha256"], end, cfg.epochs)

    def write(self) -> None:
        write_json_atomic(self.store / RECORD, self.record)
        self.show(LIVE)

    def begin_epoch(self) -> None:
        self.epoch_start = time.perf_counter()

    def save_resume(self, trainer, epoch: int, loader=None, step_log=None) -> Path:
        """A resume checkpoint after `epoch` completed epochs; with a loader, also the steps done of the next."""
        state = {"epoch": epoch, "iteration": self.iteration, "identity": self.spec.identity,
                 "trainer": trainer.state_dict(), "rng_cpu": torch.get_rng_state()}
        step = 0
        if loader is not None:
            step = loader.step + 1
            state["partial"] = {"loader": loader.state_dict(), "step_log": step_log[:step].cpu()}
        path, _ = checkpoint.save_checkpoint(self.store, "resume", epoch, state, step=step)
        log.info("checkpoint %s", path)
        return path

    def interrupted(self, signum, trainer, epoch: int, loader=None, step_log=None, resuming_mid_epoch=False):
        """Save where the run stands and mark it interrupted; returns the exception to raise. Stopped while
        resuming a partial epoch, before any step, the checkpoint it resumed from still says where it stands."""
        self.record["status"] = "interrupted"
        if resuming_mid_epoch:
            self.write()
            return TrainingInterrupted(f"signal {signum} while resuming epoch {epoch + 1}: its checkpoint is kept; "
                                       "run the same command to resume")
        path = self.save_resume(trainer, epoch, loader, step_log)
        self.write()
        if loader is None:
            return TrainingInterrupted(f"signal {signum} after epoch {epoch}: saved {path}; "
                                       "run the same command to resume")
        return TrainingInterrupted(f"signal {signum} during epoch {epoch + 1}: saved {path} after {loader.step + 1} "
                                   f"of {len(loader)} steps; run the same command to resume")

    def end_epoch(self, epoch: int, trainer, step_log: torch.Tensor, lr: float) -> torch.Tensor:
        """Append the epoch's steps to steps.csv (the epoch's one host sync), write run.json and log the epoch's
        progress line; returns the step metrics on the host."""
        values = step_log.cpu()
        header = (*STEP_KEYS, *trainer.step_metrics)
        append_rows(self.store / STEPS, header,
                    ([epoch, self.iteration + s, layer + 1, *map(fmt, row)]
                     for s, per_layer in enumerate(values.tolist()) for layer, row in enumerate(per_layer)))
        self.iteration += len(values)
        seconds = round(time.perf_counter() - self.epoch_start, 3)
        self.record["epoch_wall_s"][str(epoch)] = seconds
        self.write()
        times = list(self.record["epoch_wall_s"].values())
        left = (self.spec.cfg.epochs - epoch) * sum(times) / len(times)
        column = {name: i for i, name in enumerate(trainer.step_metrics)}
        loss = values[..., column["loss"]].nanmean().item()
        separation = "" if "separation" not in column else \
            f", last-layer separation {values[:, -1, column['separation']].nanmean().item():.4g}"
        log.info("epoch %d/%d: loss %.4g%s, %.1f s, lr %g, ETA %.0f min", epoch, self.spec.cfg.epochs, loss,
                 separation, seconds, lr, left / 60)
        return values

    def evaluation(self, epoch: int, result: dict, last_k: int) -> None:
        append_rows(self.store / EVAL, EVAL_COLUMNS,
                    ([epoch, layer, *map(fmt, row)] for layer, *row in zip(
                        result["layer"], result["accuracy"], result["max_goodness"], result["max_abs_weight"])))
        append_rows(self.store / ENSEMBLE, ENSEMBLE_COLUMNS, [[epoch, last_k, fmt(result["acc_last_k"])]])
        self.show(LIVE)
        log.info("epoch %d: test accuracy of the last layer %.4f, of the last %d layers %.4f",
                 epoch, result["acc_last"], last_k, result["acc_last_k"])

    def save_snapshot(self, epoch: int, trainer) -> None:
        path, sha256 = checkpoint.save_checkpoint(self.store, "snapshot", epoch, {
            "epoch": epoch, "identity": self.spec.identity, "net": trainer.net.state_dict()})
        self.record["snapshots"][str(epoch)] = {"path": str(path), "sha256": sha256}
        self.write()
        log.info("snapshot of epoch %d: %s", epoch, path)

    def finish(self) -> dict:
        """metrics.json (read back from the tidy logs, their single source), written last."""
        summary = summarize(self.store, self.spec.identity, self.spec.identity_hash)
        self.record.update(status="complete", finished=now())
        write_json_atomic(self.store / RECORD, self.record)
        write_json_atomic(self.store / SUMMARY, summary)
        return summary

    @contextlib.contextmanager
    def failure_recorded(self):
        """An error once training started marks run.json `failed`, with the error (and, for a divergence, where)."""
        try:
            yield
        except TrainingInterrupted:
            raise
        except BaseException as err:  # Ctrl-C included
            if self.record:
                self.record.update(status="failed", error=f"{type(err).__name__}: {err}", finished=now())
                if isinstance(err, Diverged):
                    self.record["diverged"] = err.where
                    log.error("%s: the run failed; no metrics.json is written", err)
                self.write()
            raise
