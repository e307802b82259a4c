"""Provenance of a run: seeds, code identity, software versions, machine and data checksums (`run.json`)."""

import datetime
import os
import platform
import random
import socket
import sys

import numpy as np
import torch
import torchvision

from trifecta.codehash import git_state, source_hash


def set_seed(seed: int, deterministic: bool, device: torch.device) -> None:
    """Seed Python, numpy and torch; in deterministic mode also ask torch for deterministic kernels. cuDNN
    autotuning (CUDA only) is on unless deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def host() -> str:
    return socket.gethostname()


def slurm_job_id() -> str | None:
    return os.environ.get("SLURM_JOB_ID")


def versions() -> dict:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }


def run_record(*, recipe, deterministic: bool, data_checksums: dict, training_code: str, config_file=None) -> dict:
    """Everything about where and with what a run executes; the trainer adds config, times and results.

    `training_code` is the hash in the run's identity, computed once per run (not again here)."""
    device = recipe.device
    return {
        "git": git_state([config_file] if config_file else ()),
        "source_sha256": source_hash(),
        "training_code_sha256": training_code,
        "versions": versions(),
        "device": {"type": device.type, "name": device_name(device)},
        "host": host(),
        "slurm_job_id": slurm_job_id(),
        "recipe": recipe.describe(),
        "determinism": {"deterministic": deterministic, "cudnn_benchmark": torch.backends.cudnn.benchmark},
        "data_sha256": data_checksums,
    }

