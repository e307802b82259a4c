"""Train one run: `trifecta train --dataset NAME --arch NAME --algo NAME --seed N --out DIR [--set key=value]`.

The dataset lives on the training device as uint8; each batch is augmented there and shuffled with a
device-side permutation. Metrics stay on the device during an epoch and are written once per epoch. At each
evaluation epoch the test split is classified by goodness over all labels (every layer, the last layer, the
mean of the last k layers); model snapshots are kept at the snapshot epochs, and periodic resume
checkpoints let a killed run continue where it stopped.

Files in DIR: run.json (provenance), steps.csv (per step and layer), eval.csv (per evaluation epoch and
layer), metrics.json (summary, written last: its presence means the run is complete), checkpoints/.
"""

import argparse
import contextlib
import csv
import functools
import io
import json
import logging
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from trifecta import checkpoint, codehash, data, provenance
from trifecta.algorithms import build_trainer
from trifecta.config import TrainConfig, build_config, settings_help
from trifecta.registry import ARCHS, BASELINES, DATASETS, PRESETS, check_combination

log = logging.getLogger("trifecta.train")
EVAL_COLUMNS = ("epoch", "layer", "accuracy", "max_goodness", "max_abs_weight")
ENSEMBLE_COLUMNS = ("epoch", "last_k", "accuracy")
LOGS = ("steps.csv", "eval.csv", "ensemble.csv")


@dataclass
class RunSpec:
    dataset: str
    arch: str
    algo: str
    seed: int
    out_dir: Path
    data_dir: Path
    cfg: TrainConfig
    device: str = "auto"
    deterministic: bool = False
    checkpoint_dir: Path | None = None  # default: OUT/checkpoints

    @functools.cached_property
    def identity(self) -> dict:
        """What determines the run's results (eval_batch_size only changes speed)."""
        cfg = {k: v for k, v in self.cfg.to_dict().items() if k != "eval_batch_size"}
        return {"dataset": self.dataset, "arch": self.arch, "algo": self.algo, "seed": self.seed,
                "config": cfg, "training_code": codehash.stage_hash("training")}

    @functools.cached_property
    def identity_hash(self) -> str:
        """Computed once per run, so an edit of src/ during training cannot mix two code hashes."""
        return codehash.identity_sha256(self.identity)


def resolve_device(name: str) -> torch.device:
    if name == "auto":  # CUDA_VISIBLE_DEVICES alone (e.g. a fake SLURM GPU) does not make a device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no CUDA device is available")
    return torch.device(name)


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


# ---- Evaluation ----

def evaluate(trainer, images, labels, info, last_k: int) -> dict:
    """Classify the test split by score over all labels; per-layer and ensemble accuracies."""
    trainer.net.eval()
    scores = torch.cat([trainer.scores(prepare(part, info, None)) for part in images.split(8192)])
    trainer.net.train()
    labels = labels.to(scores.device)
    per_layer = (scores.argmax(1) == labels[:, None]).float().mean(0)
    ensemble = (scores[:, :, -last_k:].mean(2).argmax(1) == labels).float().mean()
    true_scores = scores[torch.arange(len(labels), device=scores.device), labels]
    max_goodness = true_scores.max(0).values if trainer.scores_are_goodness else torch.full_like(per_layer, float("nan"))
    scored = scores.shape[2]  # FF: every layer; baselines: only the output layer
    return {"layer": list(range(trainer.num_layers - scored + 1, trainer.num_layers + 1)),
            "accuracy": per_layer.tolist(), "acc_last": per_layer[-1].item(),
            "acc_last_k": ensemble.item() if scores.shape[2] >= last_k else float("nan"),
            "max_goodness": max_goodness.tolist(), "max_abs_weight": trainer.max_abs_weights()[-scored:].tolist()}


def prepare(images_u8, info, generator):
    """uint8 batch -> augmented (if a generator is given), normalised float batch."""
    x = images_u8.float().div_(255)
    if generator is not None:
        x = data.augment(x, generator)
    return data.standardize(x, info)


# ---- Training ----

def train_epoch(trainer, images, labels, info, cfg: TrainConfig, generator, batches, step_log, first: int = 0,
                should_stop=lambda: False) -> int:
    """Steps `first`.. of an epoch over `batches`, metrics into the device tensor step_log[step].

    The trainer sees the step's index in the epoch: the released code's OLU counter restarts every epoch.
    Returns the number of steps done: fewer than len(batches) when should_stop() turned true.
    """
    for step in range(first, len(batches)):
        idx = batches[step]
        x = prepare(images[idx], info, generator if cfg.augment else None)
        step_log[step] = trainer.train_step(x, labels[idx], step, generator)
        if should_stop():
            return step + 1
    return len(batches)


def new_step_log(trainer, steps: int, device):
    return torch.empty(steps, trainer.num_layers, len(trainer.step_metrics), device=device)


class TrainingInterrupted(RuntimeError):
    """SIGTERM or SIGUSR1 arrived; a resume checkpoint of the partial epoch was written."""


class StopRequest:
    """Records SIGTERM (SLURM's time-limit warning, preemption, scancel) and SIGUSR1 while installed."""

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


def save_resume(ckpt_dir: Path, spec: RunSpec, trainer, epoch: int, iteration: int, partial=None, step: int = 0):
    """A resume checkpoint after `epoch` completed epochs (and `step` steps of the next, kept in `partial`)."""
    state = {"epoch": epoch, "iteration": iteration, "identity": spec.identity, "trainer": trainer.state_dict(),
             "rng_cpu": torch.get_rng_state()}
    if partial is not None:
        state["partial"] = partial
    return checkpoint.save_checkpoint(ckpt_dir, "resume", epoch, state, step=step)


def train(spec: RunSpec) -> dict:
    out = spec.out_dir
    out.mkdir(parents=True, exist_ok=True)
    ckpt_dir = (spec.checkpoint_dir or out / "checkpoints") / spec.identity_hash
    summary_path = out / "metrics.json"
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        if summary.get("identity") == spec.identity:
            log.info("run already complete: %s", summary_path)
            return summary
        summary_path.unlink()  # a different run: its summary no longer describes this directory
    if not (ckpt_dir / checkpoint.INDEX).exists():  # a fresh start: logs of another run must go
        for name in LOGS:
            (out / name).unlink(missing_ok=True)

    check_combination(spec.algo, spec.arch)
    info = data.get_dataset_info(spec.dataset)
    device = resolve_device(spec.device)
    provenance.set_seed(spec.seed, spec.deterministic)
    cfg = spec.cfg

    train_split, test_split = data.load_dataset(spec.dataset, spec.data_dir)
    train_split = data.take_subset(train_split, cfg.subset_train)
    test_split = data.take_subset(test_split, cfg.subset_test)
    x_train, y_train = train_split.images.to(device), train_split.labels.to(device)
    x_test, y_test = test_split.images.to(device), test_split.labels.to(device)
    trainer = build_trainer(spec.algo, info, spec.arch, cfg, device)

    record = {**spec.identity, "identity_sha256": spec.identity_hash, "status": "running",
              **provenance.run_record(device=device, deterministic=spec.deterministic,
                                      training_code=spec.identity["training_code"],
                                      data_checksums=data.dataset_checksums(spec.dataset, spec.data_dir)),
              "n_train": len(y_train), "n_test": len(y_test), "checkpoint_dir": str(ckpt_dir),
              "started": provenance.now(), "epoch_wall_s": {}, "resumes": [], "snapshots": {}}
    start_epoch, iteration = 0, 0
    loaded = checkpoint.load_latest(ckpt_dir)
    if loaded is not None:
        state, path = loaded
        trainer.load_state_dict(state["trainer"])
        torch.set_rng_state(state["rng_cpu"])
        start_epoch, iteration = state["epoch"], state["iteration"]
        previous = json.loads((out / "run.json").read_text()) if (out / "run.json").exists() else {}
        if previous.get("identity_sha256") == record["identity_sha256"]:
            for key in ("started", "epoch_wall_s", "resumes", "snapshots"):
                record[key] = previous[key]
        record["resumes"].append({"from_epoch": start_epoch, "checkpoint": path.name, "at": provenance.now(),
                                  "host": record["host"], "slurm_job_id": record["slurm_job_id"]})
        for name in LOGS:
            truncate_rows(out / name, start_epoch)
        log.info("resuming from %s (epoch %d)", path, start_epoch)
    checkpoint.write_json_atomic(out / "run.json", record)

    generator = torch.Generator(device=device)
    step_header = ("epoch", "step", "layer", *trainer.step_metrics)
    partial = loaded[0].get("partial") if loaded else None  # an epoch that a signal interrupted
    stop = StopRequest()
    with stop.installed():
        for epoch in range(start_epoch + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            trainer.set_lr(cfg.lr_at(epoch - 1))
            if partial is None:
                generator.manual_seed(spec.seed * 1_000_003 + epoch)  # per-epoch stream: no RNG replay on resume
                batches = data.batch_indices(len(y_train), cfg.batch_size, generator, device)
                step_log, first = new_step_log(trainer, len(batches), device), 0
            else:
                batches = [b.to(device) for b in partial["batches"]]
                generator.set_state(partial["generator"])
                step_log, first = new_step_log(trainer, len(batches), device), len(partial["step_log"])
                step_log[:first] = partial["step_log"].to(device)
                partial = None
            done = train_epoch(trainer, x_train, y_train, info, cfg, generator, batches, step_log, first, stop)
            if done < len(batches):
                unfinished = {"batches": [b.cpu() for b in batches], "generator": generator.get_state(),
                              "step_log": step_log[:done].cpu()}
                path, _ = save_resume(ckpt_dir, spec, trainer, epoch - 1, iteration, unfinished, step=done)
                record["status"] = "interrupted"
                checkpoint.write_json_atomic(out / "run.json", record)
                raise TrainingInterrupted(f"signal {stop.signal} during epoch {epoch}: saved {path} "
                                          f"after {done} of {len(batches)} steps; run the same command to resume")
            step_values = step_log.cpu().tolist()  # the epoch's one host sync
            append_rows(out / "steps.csv", step_header,
                        ([epoch, iteration + s, layer + 1, *map(fmt, values)]
                         for s, per_layer in enumerate(step_values) for layer, values in enumerate(per_layer)))
            iteration += len(step_values)
            record["epoch_wall_s"][str(epoch)] = round(time.perf_counter() - t0, 3)

            if epoch in cfg.eval_epochs:
                result = evaluate(trainer, x_test, y_test, info, cfg.last_k)
                append_rows(out / "eval.csv", EVAL_COLUMNS,
                            ([epoch, *row[:1], *map(fmt, row[1:])] for row in zip(
                                result["layer"], result["accuracy"], result["max_goodness"], result["max_abs_weight"])))
                append_rows(out / "ensemble.csv", ENSEMBLE_COLUMNS, [[epoch, cfg.last_k, fmt(result["acc_last_k"])]])
                log.info("epoch %d: test accuracy of the last layer %.4f, of the last %d layers %.4f",
                         epoch, result["acc_last"], cfg.last_k, result["acc_last_k"])
            if epoch in cfg.snapshot_epochs:
                path, sha256 = checkpoint.save_checkpoint(ckpt_dir, "snapshot", epoch, {
                    "epoch": epoch, "identity": spec.identity, "net": trainer.net.state_dict()})
                record["snapshots"][str(epoch)] = {"path": str(path), "sha256": sha256}
            if epoch == cfg.epochs or (cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0):
                save_resume(ckpt_dir, spec, trainer, epoch, iteration)
            checkpoint.write_json_atomic(out / "run.json", record)

    summary = summarize(out, spec)
    record.update(status="complete", finished=provenance.now())
    checkpoint.write_json_atomic(out / "run.json", record)
    checkpoint.write_json_atomic(summary_path, summary)
    return summary


def summarize(out: Path, spec: RunSpec) -> dict:
    """metrics.json: accuracies per evaluation epoch, read back from the tidy logs (their single source)."""
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


# ---- Command line ----

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta train", description=__doc__.split("\n\n")[0],
                                epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help=", ".join(DATASETS))
    p.add_argument("--arch", required=True, help=", ".join(f"{a.name} ({a.label})" for a in ARCHS.values()))
    p.add_argument("--algo", required=True, help=f"{', '.join(PRESETS)}, LOSS-NORM[-olu] (e.g. symba-bn), "
                                                 f"{', '.join(BASELINES)}")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", type=Path, required=True, help="run directory (resumes if it holds checkpoints)")
    p.add_argument("--data-dir", type=Path, default=Path("resources/data"), help="dataset root")
    p.add_argument("--config", type=Path, help="YAML file of settings (applied before --set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set epochs=200 --set lr_schedule=0:1e-3,150:1e-4")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--deterministic", action="store_true", help="deterministic kernels (bitwise repeatable on CPU)")
    p.add_argument("--checkpoint-dir", type=Path, help="checkpoint root (default OUT/checkpoints)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = build_config(args.config, args.overrides, args.algo, args.dataset)
    spec = RunSpec(args.dataset, args.arch, args.algo, args.seed, args.out, args.data_dir, cfg,
                   args.device, args.deterministic, args.checkpoint_dir)
    try:
        train(spec)
    except TrainingInterrupted as stopped:
        log.warning("%s", stopped)
        return 143  # the shell's code for SIGTERM: the job did not finish
    return 0
