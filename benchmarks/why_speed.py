"""How long does `trifecta why` take for the paper grid? `python benchmarks/why_speed.py [--repeat N]` (from the
repository root, in the venv; no GPU, network or dataset needed) prints the median wall time of
`python -m trifecta.cli why` over every run of config.yaml (117 runs), start-up of Python included.

1. Writes, in a temporary folder, a data directory with the files of the paper's five datasets at about their real
   sizes (random bytes: `why` only hashes them) and a config overlay pointing data_dir and store_dir there.
2. Writes a finished run directory for every run of the grid: metrics.json and run.json whose identity is the one
   the config, this checkout's code and those data files give (so each run is compared down to its data), with
   one run in ten recorded with another setting and one in ten with another code hash (so their lines are made).
3. Times the command --repeat times (default 5) and prints the median, minimum and maximum, and whether torch was
   imported.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from trifecta.planning.grid import Grid  # noqa: E402

from trifecta.planning.configfile import load_config  # noqa: E402
from trifecta.identity.codehash import data_checksums, identity_sha256  # noqa: E402
from trifecta.identity.runcode import run_code  # noqa: E402
from trifecta.planning.runs import TRAIN_DIR  # noqa: E402
from trifecta.training.registry import DATASETS, dataset_files  # noqa: E402

# Bytes of each file as torchvision downloads them (approximate where a format's header varies).
MB = 1 << 20
SIZES = {"train-images-idx3-ubyte": 47_040_016, "train-labels-idx1-ubyte": 60_008,
         "t10k-images-idx3-ubyte": 7_840_016, "t10k-labels-idx1-ubyte": 10_008,
         "train_32x32.mat": 182_040_794, "test_32x32.mat": 64_275_384,
         "data_batch_1": 31_035_704, "data_batch_2": 31_035_704, "data_batch_3": 31_035_704,
         "data_batch_4": 31_035_704, "data_batch_5": 31_035_704, "test_batch": 31_035_704, "batches.meta": 158,
         "train": 155_249_031, "test": 31_049_707, "meta": 1_790}


def write_data(data_dir: Path) -> None:
    for name in DATASETS:
        if DATASETS[name].bundled_in:
            continue
        for rel, path in dataset_files(name, data_dir).items():
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(os.urandom(SIZES[path.name]))


def write_runs(root: Path, grid: Grid, data_dir: Path) -> None:
    checksums = {}
    for i, run in enumerate(grid.runs):
        expected = grid.expected_identity(run, "cuda")
        if run.dataset not in checksums:
            checksums[run.dataset] = data_checksums(run.dataset, data_dir)
        identity = {**expected, "data": checksums[run.dataset]}
        definitions = run_code(run.dataset, run.arch, run.algo).definitions
        if i % 10 == 3:
            identity["settings"] = {**identity["settings"], "width": 0.5}
        if i % 10 == 7:
            identity["training_code"] = "0" * 64
            definitions = {**definitions, next(iter(definitions)): "0" * 16}
        run_dir = root / run.dir(TRAIN_DIR)
        run_dir.mkdir(parents=True)
        sha = identity_sha256(identity)
        (run_dir / "metrics.json").write_text(json.dumps({"identity": identity, "identity_sha256": sha, "evals": {}}))
        (run_dir / "run.json").write_text(json.dumps({**identity, "identity_sha256": sha, "status": "complete",
                                                      "training_code_definitions": definitions}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data_dir = root / "data"
        write_data(data_dir)
        overlay = root / "overlay.yaml"
        overlay.write_text(json.dumps({"data_dir": str(data_dir), "store_dir": str(root / "store")}))
        grid = Grid.from_config(load_config([REPO / "config.yaml", overlay]))
        write_runs(root, grid, data_dir)
        size = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file())
        why = ["why", "--config", str(REPO / "config.yaml"), "--configfile", str(overlay)]
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        times, out = [], None
        for _ in range(args.repeat):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "trifecta.cli", *why], cwd=root, env=env, capture_output=True,
                                 text=True, check=True)
            times.append(time.perf_counter() - start)
        probe = (f"import sys; from trifecta.cli import main; main({why!r}); "
                 "print('torch' in sys.modules, file=sys.stderr)")
        torch = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True,
                               check=True).stderr.strip().splitlines()[-1] == "True"
        lines = out.stdout.splitlines()
        print(f"trifecta why over {len(grid.runs)} runs, {size / MB:.0f} MB of data hashed: median "
              f"{statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f}, {args.repeat} runs); "
              f"torch imported: {torch}; {sum(line.startswith(' ') is False for line in lines)} runs reported, "
              f"{sum('trains' in line for line in lines)} to train")


if __name__ == "__main__":
    main()
