"""Last-layer test accuracy on the embedded digits (mnist5k) by epoch, mean ± sd over seeds, on this machine.

    python benchmarks/mnist5k_accuracy.py --algos tff vff symba-ln --seeds 0 1 2 --epochs 10 \
        [--set width=0.25 --set batch_size=64] [--json FILE] [--threads 1]

Each run is a `trifecta train` of the shallow CNN (`--arch`), evaluated after every epoch; runs go one after
another in a temporary folder. Used to measure what a change of the training code does to accuracy.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def train(algo: str, seed: int, epochs: int, arch: str, settings: list[str], threads: int, root: Path) -> dict:
    out = root / f"{algo}_seed{seed}"
    evals = ",".join(str(e) for e in range(1, epochs + 1))
    command = [sys.executable, "-m", "trifecta.cli", "train", "--dataset", "mnist5k", "--arch", arch,
               "--algo", algo, "--seed", str(seed), "--out", str(out), "--device", "cpu", "--threads", str(threads),
               "--data-dir", str(root), "--set", f"epochs={epochs}", "--set", f"eval_epochs={evals}",
               "--set", "checkpoint_every=0", *[a for s in settings for a in ("--set", s)]]
    subprocess.run(command, check=True, capture_output=True)
    summary = json.loads((out / "metrics.json").read_text())
    return {int(epoch): e["acc_last"] for epoch, e in summary["evals"].items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algos", nargs="+", default=["tff", "vff", "symba-ln"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--arch", default="s")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="write every run's accuracies here")
    args = p.parse_args(argv)
    settings = args.settings or ["width=0.25", "batch_size=64"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for algo in args.algos:
            results[algo] = {seed: train(algo, seed, args.epochs, args.arch, settings, args.threads, Path(tmp))
                             for seed in args.seeds}
            print(f"{algo}: done", file=sys.stderr, flush=True)
    shown = sorted({1, 2, args.epochs // 2, args.epochs} - {0})
    print(f"mnist5k/{args.arch}, {' '.join(settings)}, seeds {args.seeds}: last-layer test accuracy (%), mean ± sd")
    print("| algo | " + " | ".join(f"epoch {e}" for e in shown) + " |")
    print("|---|" + "---|" * len(shown))
    for algo, runs in results.items():
        cells = []
        for epoch in shown:
            values = [100 * r[epoch] for r in runs.values()]
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            cells.append(f"{statistics.mean(values):.1f} ± {sd:.1f}")
        print(f"| {algo} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
