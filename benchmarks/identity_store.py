"""What binding results to their identity costs: `python benchmarks/identity_store.py [--repeat N]` (from the
repository root, in the venv; CPU, no network).

1. The lease: seconds to take and give back the two leases every `trifecta train` holds (its run directory's and
   its identity's: flock, the holder's record, two history lines each), median of --repeat x 100, on the
   temporary folder's filesystem.
2. A reverted change: `trifecta train` of the embedded default's TFF/s run (mnist5k, width 1/8, batch 64, 4
   epochs, one thread) as X, then with another rate (Y) in the same run directory, then X again: the wall time of
   each command, start-up included. The third finds X complete in the store and shows it without training.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trifecta.operations.lease import Lease

X = ["--dataset", "mnist5k", "--arch", "s", "--algo", "tff", "--seed", "0", "--threads", "1", "--set", "width=0.125",
     "--set", "batch_size=64", "--set", "epochs=4"]
Y = ["--set", "lr_schedule=0:0.002"]


def lease_seconds(folder: Path, repeat: int) -> float:
    """Median seconds of taking and giving back a run directory's and an identity's lease."""
    times = []
    for _ in range(repeat * 100):
        start = time.perf_counter()
        with Lease(folder / "bench", "run directory", ".lease").held(), Lease(folder / "bench", "identity").held():
            pass
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_seconds(out: Path, *extra: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "trifecta.cli", "train", *X, *extra, "--out", str(out)], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        leases = lease_seconds(Path(tmp), args.repeat)
        out = Path(tmp) / "run"
        x, y, back = train_seconds(out), train_seconds(out, *Y), train_seconds(out)
    print(f"two leases taken and given back (per run): {1000 * leases:.2f} ms (median of {args.repeat * 100})")
    print(f"trifecta train X: {x:.1f} s; Y in the same run directory: {y:.1f} s; X again (shown, not trained): "
          f"{back:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
