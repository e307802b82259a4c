"""The CUDA recipe (bfloat16 autocast, channels-last, fused Adam): `pytest -m gpu` on a machine with a GPU."""

import pytest
import torch

from trifecta import data
from trifecta.algorithms import build_trainer
from trifecta.config import TrainConfig
from trifecta.train import new_step_log, train_epoch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]
CIFAR10 = data.DATASETS["cifar10"]
CUDA = torch.device("cuda")
CFG = TrainConfig(width=0.25, batch_size=64, augment=True).validate()


def uint8_images(n: int, device):
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return images.to(device), torch.randint(0, 10, (n,), generator=gen).to(device)


def epoch(trainer, images, labels, seed: int):
    loader = data.DeviceLoader(data.Split(images, labels), CIFAR10, CFG.batch_size, CUDA, seed=seed, augment=True)
    loader.set_epoch(1)
    step_log = new_step_log(trainer, len(loader), CUDA)
    train_epoch(trainer, loader, step_log)
    return step_log


@pytest.mark.parametrize("algo, arch", [("tff", "s"), ("vff", "d"), ("bp", "d"), ("fa", "f"), ("pep", "t")])
def test_a_training_epoch_never_waits_for_the_gpu(algo, arch):
    images, labels = uint8_images(256, CUDA)
    trainer = build_trainer(algo, CIFAR10, arch, CFG, CUDA)
    epoch(trainer, images, labels, 0)  # warm-up: one-time copies of constants and index tensors
    torch.cuda.set_sync_debug_mode("error")  # any call that makes the host wait for the GPU raises
    try:
        step_log = epoch(trainer, images, labels, 1)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert torch.isfinite(step_log[..., 0]).all()


def test_bfloat16_scores_follow_the_float32_ones():
    images, _ = uint8_images(64, "cpu")
    x = data.normalize(images, CIFAR10)
    torch.manual_seed(0)
    cpu = build_trainer("tff", CIFAR10, "s", CFG, torch.device("cpu"))
    gpu = build_trainer("tff", CIFAR10, "s", CFG, CUDA)
    gpu.net.load_state_dict(cpu.net.state_dict())
    cpu.net.eval(), gpu.net.eval()
    exact, fast = cpu.scores(x), gpu.scores(x.to(CUDA)).cpu()
    torch.testing.assert_close(fast, exact, rtol=0.05, atol=1e-3)
    assert (fast.argmax(1) == exact.argmax(1)).float().mean() > 0.9
