"""Tiny fake datasets in the exact on-disk formats torchvision reads, for tests that must not download.

    expected = write_fake_dataset("cifar10", tmp_path)   # files under tmp_path
    install_fake_datasets(monkeypatch)                   # skip torchvision's md5 checks
    train, test = trifecta.data.load_dataset("cifar10", tmp_path)

write_fake_dataset returns {"train": (images, labels), "test": (images, labels)}: uint8 (N, C, H, W)
and int64 (N,) numpy arrays, i.e. what load_dataset should give back (SVHN's digit 0 as label 0).
"""

import dataclasses
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io
import torchvision

from trifecta.training import data

NUM_CLASSES = {"mnist": 10, "fmnist": 10, "svhn": 10, "cifar10": 10, "cifar100": 100}
SHAPES = {"mnist": (1, 28, 28), "fmnist": (1, 28, 28), "svhn": (3, 32, 32), "cifar10": (3, 32, 32),
          "cifar100": (3, 32, 32)}


# ---- md5-free torchvision classes ----

def _no_md5(entries):
    return [[filename, None] for filename, _ in entries]


class FakeCIFAR10(torchvision.datasets.CIFAR10):
    """CIFAR10 that only checks that its files exist (fake files cannot match the real md5 sums)."""

    train_list = _no_md5(torchvision.datasets.CIFAR10.train_list)
    test_list = _no_md5(torchvision.datasets.CIFAR10.test_list)
    meta = {**torchvision.datasets.CIFAR10.meta, "md5": None}


class FakeCIFAR100(torchvision.datasets.CIFAR100):
    train_list = _no_md5(torchvision.datasets.CIFAR100.train_list)
    test_list = _no_md5(torchvision.datasets.CIFAR100.test_list)
    meta = {**torchvision.datasets.CIFAR100.meta, "md5": None}


class FakeSVHN(torchvision.datasets.SVHN):
    split_list = {k: [url, filename, None] for k, (url, filename, _) in torchvision.datasets.SVHN.split_list.items()}


def install_fake_datasets(monkeypatch) -> None:
    """Make trifecta.data use the md5-free classes until the test ends (pytest's monkeypatch)."""
    for name, cls in [("cifar10", FakeCIFAR10), ("cifar100", FakeCIFAR100), ("svhn", FakeSVHN)]:
        monkeypatch.setitem(data.LOADERS, name, dataclasses.replace(data.LOADERS[name], cls=cls))


# ---- Writers ----

def fake_arrays(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images, and labels cycling through the classes so that each appears if n allows."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *SHAPES[name]), dtype=np.uint8)
    labels = rng.permutation(np.arange(n) % NUM_CLASSES[name]).astype(np.int64)
    return images, labels


def _write_idx(path: Path, array: np.ndarray) -> None:
    # idx: two zero bytes, type 0x08 (unsigned byte), ndim, big-endian uint32 sizes, then the bytes.
    # Magic numbers are therefore 2051 for 3-d images and 2049 for 1-d labels.
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_pickle(path: Path, obj) -> None:
    # The real files are Python 2 pickles whose keys come back as str under torchvision's
    # encoding="latin1", so torchvision indexes them with "data", "labels": str keys here too.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def _cifar_batch(images: np.ndarray, labels: np.ndarray, label_key: str) -> dict:
    # Rows of 3072 bytes: the 32x32 R plane, then G, then B, each row-major.
    return {"data": images.reshape(len(images), -1), label_key: labels.tolist(), "batch_label": "fake"}


def write_fake_dataset(name: str, root: Path, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict:
    """Write a tiny `name` dataset under root; return the arrays load_dataset should give back."""
    root = Path(root)
    expected = {"train": fake_arrays(name, n_train, seed), "test": fake_arrays(name, n_test, seed + 1)}
    (x_tr, y_tr), (x_te, y_te) = expected["train"], expected["test"]
    if name in ("mnist", "fmnist"):
        raw = root / ("MNIST" if name == "mnist" else "FashionMNIST") / "raw"
        for prefix, (x, y) in [("train", (x_tr, y_tr)), ("t10k", (x_te, y_te))]:
            _write_idx(raw / f"{prefix}-images-idx3-ubyte", x[:, 0])
            _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    elif name == "cifar10":
        base = root / "cifar-10-batches-py"
        for i, idx in enumerate(np.array_split(np.arange(n_train), 5), start=1):
            _write_pickle(base / f"data_batch_{i}", _cifar_batch(x_tr[idx], y_tr[idx], "labels"))
        _write_pickle(base / "test_batch", _cifar_batch(x_te, y_te, "labels"))
        _write_pickle(base / "batches.meta", {"label_names": [f"class{i}" for i in range(10)]})
    elif name == "cifar100":
        base = root / "cifar-100-python"
        for split, (x, y) in [("train", (x_tr, y_tr)), ("test", (x_te, y_te))]:
            batch = _cifar_batch(x, y, "fine_labels")
            batch["coarse_labels"] = (y // 5).tolist()
            _write_pickle(base / split, batch)
        _write_pickle(base / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                                      "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    elif name == "svhn":
        root.mkdir(parents=True, exist_ok=True)
        for split, (x, y) in [("train", (x_tr, y_tr)), ("test", (x_te, y_te))]:
            # The .mat files hold X as (H, W, C, N) and the digit 0 as label 10.
            mat = {"X": x.transpose(2, 3, 1, 0), "y": np.where(y == 0, 10, y).astype(np.uint8)[:, None]}
            scipy.io.savemat(root / f"{split}_32x32.mat", mat)
    else:
        raise ValueError(f"no fake writer for {name!r}")
    return expected
