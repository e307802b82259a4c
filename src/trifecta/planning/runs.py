"""Where a run lives: its id (dataset/arch/algo/seedN) and its run directory, the one pattern of every per-run
path (run directory, probe table, logs, benchmarks). No torch; read by every stage and while planning.

What a run directory holds (its files and their columns) is training/rundir.py's.
"""

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

TRAIN_DIR = "results/train"
RUN_ID = "{dataset}/{arch}/{algo}/seed{seed}"
RUN_DIR = "{root}/" + RUN_ID


@dataclass(frozen=True, order=True)
class Run:
    dataset: str
    arch: str
    algo: str
    seed: int

    @property
    def id(self) -> str:
        """A run's name in tables, figures, lineage and status: dataset/arch/algo/seedN."""
        return RUN_ID.format(**vars(self))

    def dir(self, root: str = TRAIN_DIR) -> str:
        """Its run directory: ROOT/dataset/arch/algo/seedN."""
        return RUN_DIR.format(root=root, **vars(self))

    @classmethod
    def parse(cls, text) -> "Run":
        """A run from its id, its directory or a file in it (…/dataset/arch/algo/seedN[/metrics.json])."""
        parts = PurePosixPath(str(text).replace("\\", "/")).parts
        if parts and not parts[-1].startswith("seed"):
            parts = parts[:-1]  # a file in the run directory
        if len(parts) < 4 or not re.fullmatch(r"seed\d+", parts[-1]):
            raise ValueError(f"{text!r} is not a run id or run directory (…/DATASET/ARCH/ALGO/seedN)")
        dataset, arch, algo, seed = parts[-4:]
        return cls(dataset, arch, algo, int(seed.removeprefix("seed")))


def run_id(dataset, arch, algo, seed) -> str:
    return Run(dataset, arch, algo, int(seed)).id
