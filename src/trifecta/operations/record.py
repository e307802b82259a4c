"""Provenance of a run: seeds, code identity, software versions, the environment (every installed
distribution), the machine and its GPU, and data checksums (`run.json`; the checksums: codehash.data_checksums)."""

import hashlib
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision

from trifecta.identity.codehash import git_state, source_hash
from trifecta.training.rundir import write_atomic


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


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


def distributions() -> str:
    """Every installed distribution as `name==version` lines, sorted, after the Python version and platform."""
    found = {d.metadata["Name"].lower(): d.version for d in importlib.metadata.distributions() if d.metadata["Name"]}
    lines = [f"python=={sys.version.split()[0]}", f"platform=={platform.platform()}"]
    return "\n".join(lines + [f"{name}=={found[name]}" for name in sorted(found)]) + "\n"


def environment(folder: Path) -> dict:
    """The environment's sha256 and where its list is kept, once per environment: FOLDER/<sha256[:16]>.txt."""
    text = distributions()
    sha256 = hashlib.sha256(text.encode()).hexdigest()
    path = Path(folder) / f"{sha256[:16]}.txt"
    if not path.exists():
        write_atomic(path, lambda f: f.write(text.encode()))
    return {"sha256": sha256, "distributions": text.count("\n") - 2, "file": str(path)}


def gpu_facts(device: torch.device) -> dict | None:
    """The GPU's name, compute capability and driver (nvidia-smi); None on a CPU."""
    if device.type != "cuda":
        return None
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.split()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        driver = None
    return {"name": torch.cuda.get_device_name(device), "capability": list(torch.cuda.get_device_capability(device)),
            "driver": driver, "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def run_record(*, recipe, deterministic: bool, code, environment_dir: Path,
               settings_file=None, gpu_slots: dict | None = None) -> dict:
    """Everything about where and with what a run executes; the trainer adds config, times and results.

    The identity (settings, recipe, `training_code`, `data` checksums) is the record's already, once; `code` is
    the run's code identity (runcode.RunCode), analysed once per run: each definition's hash, for `trifecta why`;
    `environment_dir` keeps the list of installed distributions of each environment once. How the recipe is
    carried out is "numerics"."""
    device = recipe.device
    return {
        "git": git_state([settings_file] if settings_file else ()),
        "source_sha256": source_hash(),
        "training_code_definitions": code.definitions,
        "versions": versions(),
        "environment": environment(environment_dir),
        "device": {"type": device.type, "name": device_name(device)},
        "gpu": gpu_facts(device),
        "gpu_slots": gpu_slots,  # the devices this job took on a machine without SLURM (operations/gpus.py)
        "host": host(),
        "slurm_job_id": slurm_job_id(),
        "numerics": recipe.describe(),
        "determinism": {"deterministic": deterministic, "cudnn_benchmark": torch.backends.cudnn.benchmark},
    }
