"""The device, seeds and numeric recipe of a run: one `precision` setting instead of checks of `device.type`
everywhere.

    precision=auto   the GPU recipe on CUDA, float32 on a CPU
    precision=bf16   the GPU recipe on any device: bfloat16 autocast, channels-last convolutions, fused Adam
    precision=fp16   as bf16 with float16 autocast and no loss scaling (the released code's "16-mixed")
    precision=fp32   float32 throughout, default memory layout, unfused Adam

So CI can run on a CPU every line that a GPU run executes; what stays CUDA-only is cuDNN autotuning
(`cudnn_benchmark`) and the host-sync check of `trifecta selftest`.
"""

import random
from dataclasses import dataclass

import numpy as np
import torch

from trifecta.training.settings import FIELDS, resolved_recipe

PRECISIONS = FIELDS["precision"].metadata["rules"]["choices"]  # declared with the setting
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def set_seed(seed: int, deterministic: bool, device: torch.device) -> None:
    """Seed Python, numpy and torch; in deterministic mode also ask torch for deterministic kernels. cuDNN
    autotuning (CUDA only) is on unless deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic


def resolve_device(name: str) -> torch.device:
    if name == "auto":  # CUDA_VISIBLE_DEVICES alone (e.g. a fake SLURM GPU) does not make a device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was requested but no CUDA device is available "
                           f"(torch {torch.__version__}, built for CUDA {torch.version.cuda})")
    return torch.device(name)


@dataclass(frozen=True)
class Recipe:
    device: torch.device
    precision: str  # bf16, fp16 or fp32 (auto resolved)
    autocast: torch.dtype | None  # mixed-precision dtype of convolutions and matmuls, None for float32
    channels_last: bool  # NHWC convolutions (cuDNN's fast layout for 16-bit)
    fused_adam: bool  # torch.optim.Adam(fused=True)

    @classmethod
    def for_run(cls, device: torch.device, precision: str = "auto") -> "Recipe":
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
        precision = resolved_recipe(precision, device.type)["precision"]
        mixed = precision != "fp32"
        return cls(device, precision, _AUTOCAST[precision], mixed, mixed)

    def autocast_context(self, enabled: bool = True):
        """Autocast to the recipe's dtype (a no-op for fp32, or when a trainer keeps float32: enabled=False)."""
        on = enabled and self.autocast is not None
        return torch.autocast(self.device.type, dtype=self.autocast or torch.bfloat16, enabled=on)

    @property
    def cudnn_benchmark(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> dict:
        return {"device": self.device.type, "precision": self.precision, "channels_last": self.channels_last,
                "fused_adam": self.fused_adam, "cudnn_benchmark": self.cudnn_benchmark}
