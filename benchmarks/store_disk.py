"""What the run store keeps on disk: `python benchmarks/store_disk.py` (from the repository root, in the venv;
CPU, no network; under a minute on 2 cores).

1. Measured: a full-width (width=1) TFF/s and TFF/d run of the embedded digits (mnist5k), 1 epoch of 64 training
   and 50 test digits at batch 32, trained by `trifecta train`'s train() into a temporary store; the size of each
   file of the finished identity, by kind, and the identity's total. The checkpoints' sizes depend on the network
   and its optimiser state only; the logs grow with the steps and evaluations.
2. Computed from serialised states: the store of the paper's grid (config.yaml) once every run finished. For
   each dataset, architecture and algorithm of the grid, the state a resume checkpoint and a snapshot hold (as
   training/runstate.py's save_resume and save_snapshot write them) is serialised with torch.save in memory,
   after two training steps on random images of the dataset's shape, with the recipe of a GPU job (precision
   `auto` there is bf16; its trainer state is built here on the CPU, and part 1 prints both recipes' sizes beside
   the files the runs wrote). Per run: the resume checkpoints a finished run keeps (the two newest of those it
   saved: training/checkpoint.py), one snapshot per snapshot epoch, and steps.csv estimated as epochs x steps x
   layers rows, its index columns at their widest and its metric cells as wide as the formatted step's; the
   other files at their size in part 1. The run directories under results/train hold copies of the logs,
   run.json and metrics.json besides.
"""

import dataclasses
import io
import tempfile
from pathlib import Path

import torch

from trifecta.planning.grid import Grid

from trifecta.planning.configfile import load_config
from trifecta.operations.train import RunSpec, train
from trifecta.training import data
from trifecta.training.algorithms import build_trainer
from trifecta.training.settings import build_settings, resolved_recipe
from trifecta.training.registry import get_dataset
from trifecta.training.rundir import fmt

MEASURED = ["width=1.0", "epochs=1", "subset_train=64", "subset_test=50", "batch_size=32"]
SMALL_FILES = ("run.json", "metrics.json", "eval.csv", "ensemble.csv", "index.json", "lease", "lease.log")


def kind(name: str) -> str:
    return "resume checkpoint" if name.startswith("resume_") else "snapshot" if name.startswith("snapshot_") else name


def measure(arch: str, root: Path) -> dict[str, int]:
    """{file kind: bytes} of a finished full-width TFF run of mnist5k, trained on the CPU into a fresh store."""
    cfg = build_settings(overrides=MEASURED, algo="tff", dataset="mnist5k")
    spec = RunSpec("mnist5k", arch, "tff", 0, root / arch / "run", root / "data", cfg, device="cpu",
                   store_dir=root / arch / "store")
    train(spec)
    return {kind(p.name): p.stat().st_size for p in sorted(spec.store.iterdir()) if p.is_file()}


def serialised(state) -> int:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.tell()


def gpu_recipe(cfg):
    """The settings with `precision` as a GPU job resolves it (auto: bf16), to build its trainer on the CPU."""
    return dataclasses.replace(cfg, precision=resolved_recipe(cfg.precision, "cuda")["precision"])


def state_sizes(dataset: str, arch: str, algo: str, cfg) -> dict:
    """Bytes of a resume checkpoint's and a snapshot's state after two steps (an optimiser's state exists once it
    stepped), the network's layers, and a steps.csv row's metric cells as written (bytes, commas included). The
    identity (2 kB) is left out."""
    info = get_dataset(dataset)
    device = torch.device("cpu")
    batch = 8
    images = torch.randint(0, 256, (2 * batch, *info.shape), dtype=torch.uint8)
    labels = torch.arange(2 * batch) % info.num_classes
    loader = data.DeviceLoader(data.Split(images, labels), info, batch, device, seed=0, augment=False)
    loader.set_epoch(1)
    trainer = build_trainer(algo, info, arch, cfg, device)
    metrics = None
    for x, y in loader:  # two steps: OLU updates every other objective at each step
        metrics = trainer.train_step(x, y, loader.step, loader.generator)
    resume = {"epoch": 1, "iteration": 1, "identity": {}, "trainer": trainer.state_dict(),
              "rng_cpu": torch.get_rng_state()}
    snapshot = {"epoch": 1, "identity": {}, "net": trainer.net.state_dict()}
    cells = [len(",".join(map(fmt, row))) for row in metrics.float().tolist()]
    return {"resume": serialised(resume), "snapshot": serialised(snapshot), "cells": sum(cells) / len(cells),
            "layers": trainer.num_layers}


def steps_csv_bytes(cfg, info, layers: int, cells: float) -> float:
    """steps.csv of a finished run: one row per step and layer, `epoch,step,layer,metrics` at their widest."""
    steps = (cfg.subset_train or info.train_images) // cfg.batch_size
    index = len(f"{cfg.epochs},{cfg.epochs * steps},{layers},")
    return cfg.epochs * steps * layers * (index + cells + 1)  # + the newline


def resumes_kept(cfg) -> int:
    saved = [e for e in range(1, cfg.epochs + 1)
             if e == cfg.epochs or (cfg.checkpoint_every and e % cfg.checkpoint_every == 0)]
    return min(2, len(saved))


def per_run(grid: Grid) -> list[dict]:
    """Each run of the grid: its grid entry, resume and snapshot sizes, and its bytes of kept checkpoints and of
    steps.csv once finished."""
    states, runs = {}, []
    for run, entry in grid.runs.items():
        cfg, key = grid.settings(run), (run.dataset, run.arch, run.algo)
        if key not in states:  # one state per dataset, architecture and algorithm
            states[key] = state_sizes(*key, gpu_recipe(cfg))
        s = states[key]
        runs.append({"entry": entry["name"], "resume": s["resume"], "snapshot": s["snapshot"],
                     "ckpt": resumes_kept(cfg) * s["resume"] + len(cfg.snapshot_epochs) * s["snapshot"],
                     "steps": steps_csv_bytes(cfg, get_dataset(run.dataset), s["layers"], s["cells"])})
    return runs


def span(values) -> str:
    low, high = min(values) / 1e6, max(values) / 1e6
    return f"{low:.0f}" if round(low) == round(high) else f"{low:.0f}-{high:.0f}"


def grid_disk(small: int) -> None:
    """Print the paper grid's store per grid entry and in total, once every run finished."""
    runs = per_run(Grid.from_config(load_config(["config.yaml"])))
    print("\nComputed: the paper grid's store (config.yaml) once every run finished, the states of a GPU job's "
          "recipe")
    print(f"{'grid entry':<18} {'runs':>4} {'resume MB':>10} {'snapshot MB':>11} {'checkpoints GB':>14} "
          f"{'steps.csv GB':>12} {'store GB':>9}")
    for name in dict.fromkeys(r["entry"] for r in runs):
        mine = [r for r in runs if r["entry"] == name]
        ckpt, steps = sum(r["ckpt"] for r in mine), sum(r["steps"] for r in mine)
        print(f"{name:<18} {len(mine):>4} {span([r['resume'] for r in mine]):>10} "
              f"{span([r['snapshot'] for r in mine]):>11} {ckpt / 1e9:>14.1f} {steps / 1e9:>12.1f} "
              f"{(ckpt + steps + len(mine) * small) / 1e9:>9.1f}")
    ckpt, steps = sum(r["ckpt"] for r in runs), sum(r["steps"] for r in runs)
    print(f"{'total':<18} {len(runs):>4} {'':>10} {'':>11} {ckpt / 1e9:>14.1f} {steps / 1e9:>12.1f} "
          f"{(ckpt + steps + len(runs) * small) / 1e9:>9.1f}")
    print(f"results/train holds copies of the logs, run.json and metrics.json: {(steps + len(runs) * small) / 1e9:.1f}"
          f" GB more; the other files are counted at {small / 1e3:.0f} kB per run (their size in part 1)")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        measured = {arch: measure(arch, Path(tmp)) for arch in ("s", "d")}
    print("Measured on this machine's CPU: a finished full-width TFF run of mnist5k (1 epoch, 64 training "
          "digits, batch 32), bytes per file")
    print(f"{'file':<18} {'TFF/s':>12} {'TFF/d':>12}")
    for name in sorted(set(measured["s"]) | set(measured["d"])):
        print(f"{name:<18} {measured['s'].get(name, 0):>12,} {measured['d'].get(name, 0):>12,}")
    print(f"{'identity total':<18} {sum(measured['s'].values()):>12,} {sum(measured['d'].values()):>12,}")
    for arch in ("s", "d"):  # part 2's in-memory states against the files the run wrote, in both recipes
        cfg = build_settings(overrides=MEASURED, algo="tff", dataset="mnist5k")
        for what, recipe in (("the CPU recipe (fp32)", cfg), ("a GPU job's recipe (bf16)", gpu_recipe(cfg))):
            s = state_sizes("mnist5k", arch, "tff", recipe)
            print(f"TFF/{arch} serialised in memory, {what}: resume {s['resume']:,}, snapshot {s['snapshot']:,}")
    small = max(sum(v for k, v in m.items() if k in SMALL_FILES) for m in measured.values())
    grid_disk(small)


if __name__ == "__main__":
    main()
