"""The state of one training run on disk: its record (run.json), tidy logs, checkpoints, resume and signals.

A run directory holds run.json (provenance and status: running, interrupted, failed, complete), steps.csv
(per step and layer), eval.csv (per evaluation epoch and layer), ensemble.csv (mean goodness of the last k
layers) and, written last, metrics.json (its presence means the run is complete). Checkpoints live in a folder
named by the run's identity hash, so a changed setting never resumes from a stale state.

A run that starts again resumes from its newest resume checkpoint that verifies, and its logs are cut back to
that epoch; with none (no checkpoint folder, none written yet, every one corrupt) it starts at epoch 0 with
empty logs. SIGTERM (SLURM's warning before a time limit, a preemption, scancel) or SIGUSR1 make it save and
stop: in an epoch, after the current step (the partial epoch is checkpointed); during start-up, evaluation or
a snapshot, at the end of that epoch.
"""

import contextlib
import csv
import io
import json
import logging
import signal
import time
from pathlib import Path

import torch

from trifecta import checkpoint, provenance
from trifecta.config import format_duration

log = logging.getLogger("trifecta.train")
EVAL_COLUMNS = ("epoch", "layer", "accuracy", "max_goodness", "max_abs_weight")
ENSEMBLE_COLUMNS = ("epoch", "last_k", "accuracy")
LOGS = ("steps.csv", "eval.csv", "ensemble.csv")


# ---- Tidy logs ----

def append_rows(path: Path, header, rows) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerows(rows)


def truncate_rows(path: Path, last_epoch: int) -> None:
    """Drop rows of epochs after `last_epoch` (written before a crash, after the last checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    kept = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= last_epoch]
    text = io.StringIO(newline="")
    csv.writer(text).writerows(kept)  # the same quoting and line endings as append_rows
    checkpoint.write_atomic(path, lambda f: f.write(text.getvalue().encode()))


def fmt(x: float) -> str:
    return "" if x != x else f"{x:.6g}"  # NaN -> empty cell


# ---- Signals ----

class TrainingInterrupted(RuntimeError):
    """SIGTERM or SIGUSR1 arrived; the run saved what it had and stopped."""


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
    """run.json, logs and checkpoints of one run (a train.RunSpec)."""

    def __init__(self, spec):
        self.spec, self.out = spec, Path(spec.out_dir)
        self.ckpt_dir = Path(spec.checkpoint_dir or self.out / "checkpoints") / spec.identity_hash
        self.record: dict = {}
        self.iteration = 0  # steps done before the current epoch
        self.epoch_start = 0.0

    @property
    def summary_path(self) -> Path:
        return self.out / "metrics.json"

    def completed(self) -> dict | None:
        """metrics.json of this very run (same identity), or None; another run's summary is removed."""
        if not self.summary_path.exists():
            return None
        summary = json.loads(self.summary_path.read_text())
        if summary.get("identity") == self.spec.identity:
            return summary
        self.summary_path.unlink()  # a different run: its summary no longer describes this directory
        return None

    def start(self, trainer, loader, facts: dict) -> tuple[int, torch.Tensor | None]:
        """Resume from the newest verified checkpoint or start afresh; write run.json. Returns the first epoch to
        train and, for an epoch a signal interrupted, the step metrics of its steps done so far."""
        self.out.mkdir(parents=True, exist_ok=True)
        spec = self.spec
        self.record = {**spec.identity, "identity_sha256": spec.identity_hash, "status": "running", **facts,
                       "checkpoint_dir": str(self.ckpt_dir), "started": provenance.now(), "epoch_wall_s": {},
                       "resumes": [], "snapshots": {}}
        loaded = checkpoint.load_latest(self.ckpt_dir) if (self.ckpt_dir / checkpoint.INDEX).exists() else None
        if loaded is None:  # epoch 0, for whatever reason: the logs of an earlier attempt must go
            for name in LOGS:
                (self.out / name).unlink(missing_ok=True)
            self.write()
            return 1, None
        state, path = loaded
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["rng_cpu"])
        epoch, self.iteration = state["epoch"], state["iteration"]
        previous = json.loads((self.out / "run.json").read_text()) if (self.out / "run.json").exists() else {}
        if previous.get("identity_sha256") == spec.identity_hash:
            for key in ("started", "resumes", "snapshots"):
                self.record[key] = previous[key]
            self.record["epoch_wall_s"] = {e: s for e, s in previous["epoch_wall_s"].items() if int(e) <= epoch}
        self.record["resumes"].append({"from_epoch": epoch, "checkpoint": path.name, "at": provenance.now(),
                                       "host": self.record["host"], "slurm_job_id": self.record["slurm_job_id"]})
        for name in LOGS:
            truncate_rows(self.out / name, epoch)
        self.write()
        partial = state.get("partial")
        if partial is None:
            log.info("resuming from %s: %d epochs done", path, epoch)
            return epoch + 1, None
        loader.load_state_dict(partial["loader"])
        log.info("resuming from %s: %d epochs and %d steps done", path, epoch, loader.step + 1)
        return epoch + 1, partial["step_log"]

    def write(self) -> None:
        checkpoint.write_json_atomic(self.out / "run.json", self.record)

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
        path, _ = checkpoint.save_checkpoint(self.ckpt_dir, "resume", epoch, state, step=step)
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

    def end_epoch(self, epoch: int, trainer, step_log: torch.Tensor, lr: float) -> None:
        """Append the epoch's steps to steps.csv (the epoch's one host sync) and log its progress line."""
        values = step_log.cpu()
        header = ("epoch", "step", "layer", *trainer.step_metrics)
        append_rows(self.out / "steps.csv", header,
                    ([epoch, self.iteration + s, layer + 1, *map(fmt, row)]
                     for s, per_layer in enumerate(values.tolist()) for layer, row in enumerate(per_layer)))
        self.iteration += len(values)
        seconds = round(time.perf_counter() - self.epoch_start, 3)
        self.record["epoch_wall_s"][str(epoch)] = seconds
        self.write()
        times = list(self.record["epoch_wall_s"].values())
        left = (self.spec.cfg.epochs - epoch) * sum(times) / len(times)
        loss = values[..., 0].nanmean().item()
        separation = "" if trainer.step_metrics[1] != "separation" else \
            f", last-layer separation {values[:, -1, 1].nanmean().item():.4g}"
        log.info("epoch %d/%d: loss %.4g%s, %.1f s, lr %g, ETA %s", epoch, self.spec.cfg.epochs, loss, separation,
                 seconds, lr, format_duration(left))

    def evaluation(self, epoch: int, result: dict, last_k: int) -> None:
        append_rows(self.out / "eval.csv", EVAL_COLUMNS,
                    ([epoch, layer, *map(fmt, row)] for layer, *row in zip(
                        result["layer"], result["accuracy"], result["max_goodness"], result["max_abs_weight"])))
        append_rows(self.out / "ensemble.csv", ENSEMBLE_COLUMNS, [[epoch, last_k, fmt(result["acc_last_k"])]])
        log.info("epoch %d: test accuracy of the last layer %.4f, of the last %d layers %.4f",
                 epoch, result["acc_last"], last_k, result["acc_last_k"])

    def save_snapshot(self, epoch: int, trainer) -> None:
        path, sha256 = checkpoint.save_checkpoint(self.ckpt_dir, "snapshot", epoch, {
            "epoch": epoch, "identity": self.spec.identity, "net": trainer.net.state_dict()})
        self.record["snapshots"][str(epoch)] = {"path": str(path), "sha256": sha256}
        self.write()
        log.info("snapshot of epoch %d: %s", epoch, path)

    def finish(self) -> dict:
        """metrics.json (read back from the tidy logs, their single source), written last."""
        summary = summarize(self.out, self.spec)
        self.record.update(status="complete", finished=provenance.now())
        self.write()
        checkpoint.write_json_atomic(self.summary_path, summary)
        return summary

    @contextlib.contextmanager
    def failure_recorded(self):
        """An error in the run marks run.json `failed`, with the error, for `trifecta status`."""
        try:
            yield
        except TrainingInterrupted:
            raise
        except BaseException as err:
            if self.record:
                self.record.update(status="failed", error=f"{type(err).__name__}: {err}", finished=provenance.now())
                self.write()
            raise


def summarize(out: Path, spec) -> dict:
    """metrics.json: accuracies per evaluation epoch, read back from eval.csv and ensemble.csv."""
    evals = {}
    with open(out / "eval.csv", newline="") as f:
        for row in csv.DictReader(f):
            entry = evals.setdefault(row["epoch"], {"acc_layers": []})
            entry["acc_layers"].append(float(row["accuracy"]))
            entry["acc_last"] = float(row["accuracy"])
    with open(out / "ensemble.csv", newline="") as f:
        for row in csv.DictReader(f):
            evals[row["epoch"]][f"acc_last{row['last_k']}"] = float(row["accuracy"]) if row["accuracy"] else None
    return {"identity": spec.identity, "identity_sha256": spec.identity_hash, "evals": evals}
