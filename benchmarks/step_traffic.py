"""Kernels launched and bytes written by an FF training step and an evaluation: a GPU profile without a GPU.

    python benchmarks/step_traffic.py [--batch N] [--width W] [--device auto|cpu|cuda]

Besides FLOPs, a training step costs one launch per kernel and the memory traffic of the tensors it writes.
Both are counted at PyTorch's dispatcher, where they do not depend on the device: on a CPU the step runs
with the CUDA recipe (bfloat16 autocast, channels-last), so the counts are those a GPU would see. Views and
allocations are not counted. Bytes scale with the batch; the figures are scaled to the training batch of
512 positives + 512 negatives (and to an evaluation of 10,000 test images with all 10 labels), and a lower
bound on the time at a given memory bandwidth follows from them (an H100 SXM moves about 3.3 TB/s, an H200
about 4.8 TB/s; each byte written is also read back).
"""

import argparse

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from trifecta.training.algorithms import build_trainer
from trifecta.training.settings import Settings
from trifecta.training.data import normalize
from trifecta.training.recipe import resolve_device
from trifecta.training.registry import get_dataset

INFO = get_dataset("cifar10")
RUNS = (("tff", "s"), ("tff", "d"), ("vff", "s"))


class KernelCounter(TorchDispatchMode):
    """Counts the operators that launch work (tensor results, not views or bare allocations) and their bytes."""

    FREE = {"aten._unsafe_view.default", "aten.empty.memory_format", "aten.empty_like.default",
            "aten.empty_strided.default", "aten.new_empty.default"}

    def __init__(self):
        super().__init__()
        self.kernels, self.bytes = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        tensors = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)]
        if tensors and not (func.is_view or str(func) in self.FREE):
            self.kernels += 1
            self.bytes += sum(t.numel() * t.element_size() for t in tensors)
        return out


def step_traffic(trainer, images, labels, generator, batch_size: int) -> tuple[int, float]:
    """(kernels, GB written) of the third training step on `images` (the first two warm up), augmentation
    included, scaled to batch_size."""
    for iteration in range(3):
        with KernelCounter() as counter:
            trainer.train_step(normalize(images, INFO, generator), labels, iteration, generator)
    return counter.kernels, counter.bytes / 1e9 * batch_size / len(labels)


def eval_traffic(trainer, images) -> tuple[int, float]:
    """(kernels, GB written) of scoring `images` with every label, scaled to a 10,000-image test split."""
    trainer.net.eval()
    x = normalize(images, INFO)
    with KernelCounter() as counter:
        trainer.scores(x)
    trainer.net.train()
    return counter.kernels, counter.bytes / 1e9 * 10_000 / len(images)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=32, help="positives per counted step (bytes are scaled to 512)")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    cfg = Settings(width=args.width, augment=True, precision="bf16").validate()  # the GPU recipe, on any device
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.batch, 3, 32, 32), dtype=torch.uint8, generator=gen).to(device)
    labels = torch.randint(0, 10, (args.batch,), generator=gen).to(device)
    print(f"per training step of {cfg.batch_size} + {cfg.batch_size} samples, CIFAR-10 shape, width {args.width}, "
          f"counted on {device.type}{'' if device.type == 'cuda' else ' with the CUDA recipe'}")
    for algo, arch in RUNS:
        trainer = build_trainer(algo, INFO, arch, cfg, device)
        kernels, written = step_traffic(trainer, images, labels, torch.Generator(device=device).manual_seed(0),
                                        cfg.batch_size)
        steps = 50_000 // cfg.batch_size
        print(f"{algo.upper()}/{arch}: {kernels} kernels, {written:.2f} GB written; per epoch of {steps} steps "
              f"at least {2 * written * steps / 3.3e3:.2f} s on an H100 / {2 * written * steps / 4.8e3:.2f} s on "
              f"an H200 in memory traffic alone")
        kernels, written = eval_traffic(trainer, images)
        print(f"  evaluation of 10,000 images x 10 labels: {written:.0f} GB written, at least "
              f"{2 * written / 3.3e3:.3f} s on an H100 / {2 * written / 4.8e3:.3f} s on an H200")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
