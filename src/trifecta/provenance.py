"""Provenance of a run: seeds, code identity, software versions, machine and data checksums (`run.json`)."""

import datetime
import os
import platform
import random
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision

from trifecta.codehash import PACKAGE_DIR, source_hash


def set_seed(seed: int, deterministic: bool, device: torch.device) -> None:
    """Seed Python, numpy and torch; in deterministic mode also ask torch for deterministic kernels. cuDNN
    autotuning (CUDA only) is on unless deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=False)
    torch.backends.cudnn.benchmark = device.type == "cuda" and not deterministic


# What can change a result: the package, the workflow and its config, the environment files. Not the site's
# cluster profile (slurm/), the README or the tests.
RESULT_PATHS = ("src", "workflow", "Snakefile", "config.yaml", "envs", "pyproject.toml")


def git_state(extra_paths=()) -> dict:
    """Commit of the checkout holding the package, and whether (and in which files) it differs from that commit
    where a result could: RESULT_PATHS and `extra_paths` (e.g. a --config file), untracked files included. None
    outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10)
    try:
        head, top = git("rev-parse", "HEAD"), git("rev-parse", "--show-toplevel")
        if head.returncode != 0 or top.returncode != 0:
            return {"commit": None, "dirty": None}
        root = Path(top.stdout.strip())
        paths = [str(p) for p in RESULT_PATHS if (root / p).exists()]
        paths += [os.path.relpath(Path(p).resolve(), root) for p in extra_paths
                  if Path(p).resolve().is_relative_to(root)]
        status = git("-C", str(root), "status", "--porcelain", "--untracked-files=all", "--", *paths)
        changed = sorted(line[3:] for line in status.stdout.splitlines())
        return {"commit": head.stdout.strip(), "dirty": bool(changed), "dirty_files": changed[:50]}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


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
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "recipe": recipe.describe(),
        "determinism": {"deterministic": deterministic, "cudnn_benchmark": torch.backends.cudnn.benchmark},
        "data_sha256": data_checksums,
    }

