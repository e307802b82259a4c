"""Accept a machine before a grid runs on it: `trifecta selftest [--device auto|cpu|cuda] [--json FILE]`.

A few training steps of each algorithm family (TFF/s, VFF/d, BP/d, FA/f, PEP/t) on CIFAR-10-shaped synthetic
images (no dataset needed; reduced width on a CPU), each through the same code as `trifecta train` under the
run's recipe (`precision=auto`: bfloat16 on CUDA, float32 on a CPU), checking that
0. a job that was given GPUs (CUDA_VISIBLE_DEVICES, as SLURM sets it) can use one: else training would run on
   the CPU of a GPU node;
1. the loss falls over a few steps on one repeated batch;
2. the scores (goodness or logits) of the mixed-precision recipe agree with float32 scores of the same weights;
3. on CUDA, no step makes the host wait for the GPU (torch.cuda.set_sync_debug_mode("error")).
It records the device, the software versions, the recipe, each family's step time and the code it tested, and
exits 1 naming every failure. The workflow's `preflight` rule runs it as the first cluster job, on a node like
the training jobs'; a failure there stops the grid before any training job is submitted. After an edit of the
training code the first training job to start runs it again before it trains (ensure_passed), so the new code
is tested once, on the GPU, before any run trains with it. On a machine with a GPU it is the one command that
accepts the GPU path.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from trifecta.operations.devices import add_device_options, device_from_options
from trifecta.operations.lease import Lease
from trifecta.operations import record as provenance
from trifecta.identity.commands import command_code
from trifecta.training import data
from trifecta.training.algorithms import build_trainer
from trifecta.training.settings import Settings
from trifecta.training.loop import new_step_log, train_epoch
from trifecta.training.recipe import Recipe
from trifecta.training.registry import get_dataset
from trifecta.training.rundir import write_atomic

FAMILIES = [("tff", "s"), ("vff", "d"), ("bp", "d"), ("fa", "f"), ("pep", "t")]
CIFAR10 = get_dataset("cifar10")
TRIAL_STEPS = 8  # on one repeated batch: enough for every family's loss to fall at its default rate
SCORE_RTOL, SCORE_ATOL, ARGMAX_AGREEMENT = 0.05, 1e-3, 0.9  # bf16 keeps ~3 significant digits


def synthetic(n: int, device, seed: int = 0) -> data.Split:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, *CIFAR10.shape), dtype=torch.uint8, generator=gen)
    return data.Split(images.to(device), torch.randint(0, 10, (n,), generator=gen).to(device))


def settings(algo: str, cuda: bool, precision: str) -> Settings:
    width = 1.0 if cuda else 0.125
    return Settings(width=width, batch_size=256 if cuda else 32, precision=precision, eval_batch_size=4096,
                       pep_hidden=1024, lr_schedule=[(0, 0.01 if algo == "pep" else 1e-3)]).validate()


def loss_falls(algo: str, arch: str, device, precision: str) -> dict:
    """TRIAL_STEPS steps on one batch: first and last loss (mean over layers) and the median step time in ms."""
    torch.manual_seed(0)
    cfg = settings(algo, device.type == "cuda", precision)
    trainer = build_trainer(algo, CIFAR10, arch, cfg, device)
    batch = synthetic(cfg.batch_size, device)
    x = data.normalize(batch.images, CIFAR10)
    generator = torch.Generator(device=device).manual_seed(0)
    losses, times = [], []
    for step in range(TRIAL_STEPS):
        start = time.perf_counter()
        metrics = trainer.train_step(x, batch.labels, step, generator)
        losses.append(metrics[:, 0].nanmean())  # stays on the device until the end
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    first, last = torch.stack(losses)[[0, -1]].tolist()
    return {"loss_first": first, "loss_last": last, "step_ms": 1000 * sorted(times[1:])[len(times) // 2],
            "recipe": trainer.recipe.precision}


def scores_agree(algo: str, arch: str, device) -> dict:
    """The same weights scored in float32 and under the bfloat16 recipe."""
    torch.manual_seed(0)
    exact = build_trainer(algo, CIFAR10, arch, settings(algo, device.type == "cuda", "fp32"), device)
    fast = build_trainer(algo, CIFAR10, arch, settings(algo, device.type == "cuda", "bf16"), device)
    fast.net.load_state_dict(exact.net.state_dict())
    x = data.normalize(synthetic(64, device, seed=1).images, CIFAR10)
    exact.net.eval(), fast.net.eval()
    a, b = exact.scores(x).float(), fast.scores(x).float()
    excess = ((b - a).abs() / (SCORE_ATOL + SCORE_RTOL * a.abs())).max().item()  # <= 1: within tolerance
    return {"tolerance_used": excess, "argmax_agreement": (a.argmax(1) == b.argmax(1)).float().mean().item()}


def no_host_sync(algo: str, arch: str, device) -> str | None:
    """An epoch of 4 steps with any host-device synchronisation raising; None if there was none."""
    cfg = settings(algo, True, "auto")
    trainer = build_trainer(algo, CIFAR10, arch, cfg, device)
    loader = data.DeviceLoader(synthetic(4 * cfg.batch_size, device), CIFAR10, cfg.batch_size, device, seed=0,
                               augment=True)
    for epoch in (1, 2):  # the first warms up: one-time copies of constants and index tensors
        loader.set_epoch(epoch)
        step_log = new_step_log(trainer, len(loader), device)
        if epoch == 2:
            torch.cuda.set_sync_debug_mode("error")
        try:
            train_epoch(trainer, loader, step_log)
        except RuntimeError as err:
            return str(err).splitlines()[0]
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return None


def unusable_gpu(device: torch.device, gpus: int | None = None) -> str | None:
    """Why a job that was given GPUs will not use one, or None. `gpus`: what the job says it was given (--gpus);
    0 is the CPU by choice, whatever CUDA_VISIBLE_DEVICES the machine sets."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    if device.type == "cuda" or gpus == 0 or visible in ("", "-1", "NoDevFiles"):
        return None
    return (f"this job was given GPU(s) (CUDA_VISIBLE_DEVICES={visible}) but torch {torch.__version__} (built for "
            f"CUDA {torch.version.cuda}) sees no usable CUDA device: training would run on the CPU")


def selftest(device: torch.device, gpus: int | None = None) -> dict:
    recipe = Recipe.for_run(device)
    report = {"device": {"type": device.type, "name": provenance.device_name(device)},
              "versions": provenance.versions(), "recipe": recipe.describe(), "families": {}, "failures": []}
    if problem := unusable_gpu(device, gpus):
        report["failures"].append(problem)
        return report  # what else runs here would test the CPU, not the node's GPU
    for algo, arch in FAMILIES:
        name = f"{algo}/{arch}"
        result = loss_falls(algo, arch, device, "auto")
        result["scores"] = scores_agree(algo, arch, device)
        if not result["loss_last"] < result["loss_first"]:
            report["failures"].append(f"{name}: the loss did not fall in {TRIAL_STEPS} steps on one batch "
                                      f"({result['loss_first']:.4g} -> {result['loss_last']:.4g})")
        scores = result["scores"]
        if scores["tolerance_used"] > 1 or scores["argmax_agreement"] < ARGMAX_AGREEMENT:
            report["failures"].append(f"{name}: bfloat16 scores differ from float32 beyond {SCORE_RTOL:.0%} + "
                                      f"{SCORE_ATOL:g} ({scores['tolerance_used']:.2f} x that) or pick another "
                                      f"label ({100 * scores['argmax_agreement']:.0f} % the same)")
        if device.type == "cuda":
            result["host_sync"] = no_host_sync(algo, arch, device)
            if result["host_sync"]:
                report["failures"].append(f"{name}: a training step waited for the GPU: {result['host_sync']}")
        report["families"][name] = result
        print(f"{name}: loss {result['loss_first']:.4g} -> {result['loss_last']:.4g}, {result['step_ms']:.1f} ms "
              f"per step ({result['recipe']}); bf16 vs fp32 scores: {scores['tolerance_used']:.2f} of the tolerance, "
              f"same argmax {100 * scores['argmax_agreement']:.0f} %", flush=True)
    return report


def timed_selftest(device: torch.device, gpus: int | None = None) -> dict:
    """The selftest's report, with the code it tested (its command's code: this module, the training code and all
    else it imports) and its duration."""
    start = time.perf_counter()
    report = selftest(device, gpus)
    return {**report, "code": command_code("selftest"), "host": provenance.host(), "seconds": round(time.perf_counter() - start, 1)}


class PreflightFailed(RuntimeError):
    """The selftest of this training code failed: no run trains until it passes."""


def ensure_passed(path: Path, device: torch.device, stop=lambda: False) -> dict:
    """Before a run trains: the preflight report at `path` must have passed for this checkout's code. A report of
    other code (training code edited since) is made again here, by the first job to get there (a lease: the others
    wait, then read it); a missing report too. Raises PreflightFailed naming the failures and the report."""
    path, code = Path(path), command_code("selftest")
    report = _read(path)
    if report is None or report.get("code") != code:
        with Lease(path.parent, "preflight report", f".{path.name}.lease").held(stop):
            report = _read(path)
            if report is None or report.get("code") != code:
                print(f"preflight: {path} is not of this training code: running the selftest first", flush=True)
                report = timed_selftest(device)
                write_report(path, report)
    if report["failures"]:
        raise PreflightFailed(f"the preflight of this training code failed on {report.get('host')} "
                              f"({'; '.join(report['failures'])}); see {path}")
    return report


def write_report(path: Path, report: dict) -> None:
    """The report as JSON, its families in the order they ran (atomically: a waiting job never reads half)."""
    write_atomic(Path(path), lambda f: f.write(json.dumps(report, indent=2).encode()))


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta selftest", description=__doc__.split("\n\n")[0])
    add_device_options(p, "cuda: fail unless a CUDA device is usable (what a GPU job should check)")
    p.add_argument("--json", type=Path, help="write the report here (also when a check fails)")
    args = p.parse_args(argv)
    device = device_from_options(args)
    report = timed_selftest(device, args.gpus)
    if args.json:
        write_report(args.json, report)
    for failure in report["failures"]:
        print(f"FAIL {failure}", file=sys.stderr)
    print(f"selftest on {report['device']['name']} ({device.type}): {len(FAMILIES)} families, "
          f"{len(report['failures'])} failures, {report['seconds']} s")
    return 1 if report["failures"] else 0
