"""Time training epochs and goodness evaluation: our GPU-resident pipeline against a reference-style one.

    python benchmarks/epoch_time.py [--quick] [--json FILE] [--device auto|cpu|cuda]

On CIFAR-10-shaped synthetic data (uint8 noise: speed does not depend on the pixels) it times, after a
warm-up epoch, a TFF/s and a TFF/d train epoch and a full evaluation over all 10 labels, the BP/d epoch if
that baseline is installed, and the same FF networks trained the way public FF code does it (Lightning-style):
torchvision PIL augmentation in DataLoader workers, fp16 autocast, and one backward and optimiser step per
layer. It prints each time, the speed-up, and the achieved TFLOP/s against the device's measured matmul peak.
`--quick` shrinks the data and the widths so that the whole script takes about two minutes on 2 CPU cores.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image

from trifecta.training import data
from trifecta.training.algorithms import TRAINERS, build_trainer
from trifecta.training.algorithms.ff import wrong_labels
from trifecta.training.settings import Settings
from trifecta.training.evaluate import evaluate
from trifecta.training.loop import new_step_log, train_epoch
from trifecta.training.recipe import resolve_device
from trifecta.training.registry import ARCHS, get_dataset, scaled

INFO = get_dataset("cifar10")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeats: int) -> float:
    """Median seconds of fn() over `repeats` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def our_epoch(trainer, loader):
    """One epoch exactly as `trifecta train` runs it, ending in the epoch's single host sync."""
    loader.set_epoch(1)
    step_log = new_step_log(trainer, len(loader), loader.images.device)
    train_epoch(trainer, loader, step_log)
    return step_log.cpu()


def matmul_peak(device) -> float:
    """Measured TFLOP/s of a large matmul in the training precision (bf16 on CUDA, float32 on CPU)."""
    n, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, 5) / 1e12


def forward_flops(arch: str, width: float) -> float:
    """Multiply-adds x 2 of one sample's forward pass through an FF CNN on 32x32 input."""
    units, pools = ARCHS[arch].units, ARCHS[arch].pools
    flops, c_in, side = 0.0, 4, 32
    for i, u in enumerate(units, start=1):
        c_out = scaled(u, width)
        flops += 2 * c_in * c_out * 9 * side * side
        c_in, side = c_out, side // 2 if i in pools else side
    return flops


# ---- Reference-style pipeline ----

class PilDataset(torch.utils.data.Dataset):
    def __init__(self, images, labels):
        self.images, self.labels = images.permute(0, 2, 3, 1).numpy(), labels.numpy()
        self.transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomRotation(15), T.ToTensor(),
                                    T.Normalize(INFO.mean, INFO.std)])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_epoch(trainer, loader, device):
    """Per-layer forward, backward and optimiser step on detached input; fp16 autocast on CUDA.

    The layers run in plain autograd ops in the paper's order (norm, conv, ReLU, pool; goodness as the mean of
    x.pow(2)), as public FF code writes them, not through our fused goodness and pool-then-ReLU.
    """
    net = trainer.net
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        neg = wrong_labels(y, 10, None)
        with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
            h = net.embed(torch.cat([x, x]), torch.cat([y, neg]))
        for layer, opt in zip(net.layers, trainer.optimizers):
            with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                h = layer.pool(F.relu(layer.weight(layer.norm(h.detach()))))
                g_pos, g_neg = h.pow(2).flatten(1).mean(1).chunk(2)
                loss = F.softplus(4.0 * (g_neg - g_pos)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


# ---- Main ----

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small data and widths (CPU smoke run)")
    p.add_argument("--json", help="write every figure to this file")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--workers", type=int, default=4, help="DataLoader workers of the reference pipeline")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    n_train, n_test, width = (1024, 256, 0.25) if args.quick else (50_000, 10_000, 1.0)
    gen = torch.Generator().manual_seed(0)
    x_train = torch.randint(0, 256, (n_train, 3, 32, 32), dtype=torch.uint8, generator=gen)
    y_train = torch.randint(0, 10, (n_train,), generator=gen)
    x_test, y_test = x_train[:n_test].clone(), y_train[:n_test].clone()
    peak = matmul_peak(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    results = {"device": name, "quick": args.quick, "n_train": n_train, "n_test": n_test, "width": width,
               "peak_matmul_tflops": peak}
    print(f"device: {name}; measured matmul peak {peak:.2f} TFLOP/s; {n_train} train / {n_test} test; width {width}")
    repeats = 1 if args.quick else 3
    cfg = Settings(width=width, augment=True).validate()
    train_loader = data.DeviceLoader(data.Split(x_train, y_train), INFO, cfg.batch_size, device, seed=0, augment=True)
    test_loader = data.DeviceLoader(data.Split(x_test, y_test), INFO, 8192, device)
    loader = torch.utils.data.DataLoader(PilDataset(x_train, y_train), batch_size=cfg.batch_size, shuffle=True,
                                         drop_last=True, num_workers=args.workers, pin_memory=device.type == "cuda",
                                         persistent_workers=args.workers > 0)
    for arch in ("s", "d"):
        trainer = build_trainer("tff", INFO, arch, cfg, device)
        ours = timed(lambda: our_epoch(trainer, train_loader), device, repeats)
        evaluation = timed(lambda: evaluate(trainer, test_loader, 3), device, repeats)
        greedy = build_trainer("symba-bn", INFO, arch, cfg, device)  # one optimiser per layer, same FLOPs
        reference = timed(lambda: reference_epoch(greedy, loader, device), device, repeats)
        steps = n_train // cfg.batch_size
        train_tflop = 3 * forward_flops(arch, width) * 2 * steps * cfg.batch_size / 1e12
        eval_tflop = forward_flops(arch, width) * 10 * n_test / 1e12
        results.update({f"train_epoch_s_tff_{arch}": ours, f"eval_s_tff_{arch}": evaluation,
                        f"reference_epoch_s_tff_{arch}": reference,
                        f"speedup_vs_reference_tff_{arch}": reference / ours,
                        f"train_tflops_tff_{arch}": train_tflop / ours, f"eval_tflops_tff_{arch}": eval_tflop / evaluation})
        print(f"TFF/{arch}: train epoch {ours:.3f} s ({train_tflop / ours:.2f} TFLOP/s, "
              f"{100 * train_tflop / ours / peak:.0f}% of peak); evaluation {evaluation:.3f} s "
              f"({100 * eval_tflop / evaluation / peak:.0f}% of peak); reference-style epoch {reference:.3f} s "
              f"-> {reference / ours:.1f}x")
    if "bp" in TRAINERS:
        bp_cfg = Settings(width=width, batch_size=cfg.batch_size).validate()
        trainer = build_trainer("bp", INFO, "d", bp_cfg, device)
        results["train_epoch_s_bp_d"] = timed(lambda: our_epoch(trainer, train_loader), device, repeats)
        print(f"BP/d: train epoch {results['train_epoch_s_bp_d']:.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
