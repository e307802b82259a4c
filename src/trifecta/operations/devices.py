"""The device options every command that computes takes (--device, --gpus, --slots-per-gpu, --threads), and what
they mean for a job: its torch threads, the GPUs it takes of its own outside SLURM (operations/gpus.py), its device.
"""

import torch

from trifecta.operations import gpus
from trifecta.training.recipe import resolve_device


def add_device_options(parser, device_help: str | None = None) -> None:
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help=device_help)
    parser.add_argument("--gpus", type=int, help="GPUs the job was given (the workflow passes its `gpu` resource): "
                                                 "0 runs on the CPU even where the machine has a GPU; outside SLURM "
                                                 "the job takes that many GPUs of its own (a slot on each)")
    parser.add_argument("--slots-per-gpu", type=int, default=1, help="jobs that may share one GPU outside SLURM "
                                                                     "(default 1: a GPU each)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")


def device_from_options(args) -> torch.device:
    """The device of --device, with torch's threads set from --threads and the job's GPUs claimed."""
    if args.threads:
        torch.set_num_threads(args.threads)
    claim_gpus(args)
    return resolve_device(device_name(args))


def claim_gpus(args, stop=lambda: False):
    """Outside SLURM, pin a job given GPUs to devices of its own before CUDA starts (gpus.claim)."""
    if args.slots_per_gpu < 1:
        raise ValueError(f"--slots-per-gpu {args.slots_per_gpu}: must be >= 1")
    return gpus.claim(args.gpus, args.slots_per_gpu, stop=stop)


def device_name(args) -> str:
    """--device, or cpu for a job given no GPU (--gpus 0): a GPU the machine has is not that job's."""
    return "cpu" if args.gpus == 0 else args.device
