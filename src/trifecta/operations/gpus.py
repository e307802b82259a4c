"""Pin each GPU job to devices of its own before CUDA starts: a pool of device slots taken with OS locks.

    claim(args.gpus)  # first thing in a GPU command, before torch touches CUDA

`snakemake --resources gpu=K` starts K GPU jobs at once and tells none which GPU to use: all land on cuda:0.
Here a job given k GPUs flocks one slot on each of k distinct devices (slot 0 of every device first, so jobs
spread out before they double up), holds them for life, freed by the OS on any exit as in operations/lease.py, and sets
CUDA_VISIBLE_DEVICES. The slots are lock files in a pool all users share (TRIFECTA_GPU_POOL, else
/tmp/trifecta-gpu-slots). Devices: CUDA_VISIBLE_DEVICES's indices or UUIDs (one form per machine, else a GPU
has two sets of slots), else nvidia-smi's. Under SLURM nothing happens: the scheduler chose the devices.
"""

import contextlib
import fcntl
import itertools
import json
import logging
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from trifecta.operations.lease import describe as describe_holder, holder

log = logging.getLogger("trifecta.gpus")
POLL_S = 5.0  # seconds between attempts while the slots are taken
DEFAULT_POOL = Path("/tmp/trifecta-gpu-slots")
HIDDEN = {"-1", "NoDevFiles"}  # CUDA_VISIBLE_DEVICES values that hide every GPU from the job
_claimed = None  # this process's Claim: a second claim() (two commands in one process) must not wait for it


class GpuWaitStopped(RuntimeError):
    """A stop was requested while waiting for free GPU slots."""


@dataclass
class Claim:
    devices: list[str]  # as the device list named them; now the job's CUDA_VISIBLE_DEVICES
    slots: list[int]  # the slot taken on each device
    slots_per_gpu: int
    pool: Path
    fds: list[int] = field(default_factory=list, repr=False)  # the open lock files: the claim lasts while they do

    def describe(self) -> dict:
        """What the job was given, for its run record."""
        return {"devices": self.devices, "slots": self.slots, "slots_per_gpu": self.slots_per_gpu,
                "pool": str(self.pool)}

    def release(self) -> None:
        """Free the slots now; a job normally holds them until it exits."""
        for fd in self.fds:
            os.ftruncate(fd, 0)  # no holder named once free
            fcntl.flock(fd, fcntl.LOCK_UN)  # also for copies of the fd in forked children
            os.close(fd)
        self.fds = []


def detect_gpus(timeout_s: float = 10.0) -> list[str]:
    """The machine's GPU indices as nvidia-smi lists them; none where it is missing, hangs or fails."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=timeout_s, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip().isdigit()]


def visible_devices() -> list[str]:
    """The devices a job may use: CUDA_VISIBLE_DEVICES's entries, else the GPUs nvidia-smi finds."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    if visible in HIDDEN:
        return []  # the environment hid the GPUs on purpose: don't hand the job one
    if visible:
        return [d.strip() for d in visible.split(",") if d.strip()]
    found = detect_gpus()
    if found:  # CUDA numbers devices fastest first unless told otherwise; make "2" mean nvidia-smi's GPU 2
        os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    return found


def slot_path(pool: Path, device: str, slot: int) -> Path:
    """One slot's lock file; any device id makes a plain name inside the pool."""
    return pool / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.slot{slot}"


def _open_shared(path: Path) -> int:
    """Open a lock file that any user may lock, creating it if needed."""
    try:  # no O_CREAT on an existing file: fs.protected_regular refuses it on other users' files in /tmp
        return os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        pass
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    except FileExistsError:
        return _open_shared(path)  # another job created it first
    os.fchmod(fd, 0o666)  # past the umask
    return fd


def _try_take(pool: Path, devices: list[str], gpus: int, slots_per_gpu: int) -> dict[str, tuple[int, int]]:
    """{device: (slot, fd)} locked on `gpus` distinct devices, slot 0 of every device first; all or none."""
    taken = {}
    for slot, device in itertools.product(range(slots_per_gpu), devices):
        if len(taken) < gpus and device not in taken:
            fd = _open_shared(slot_path(pool, device, slot))
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                taken[device] = slot, fd
            except BlockingIOError:
                os.close(fd)
    if len(taken) == gpus:
        return taken
    for _, fd in taken.values():
        os.close(fd)
    return {}


def _holders(pool: Path, devices: list[str], slots_per_gpu: int) -> str:
    return "; ".join(f"GPU {d} slot {s}: {describe_holder(_read_json(slot_path(pool, d, s)))}"
                     for s, d in itertools.product(range(slots_per_gpu), devices))


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # never taken, or being written


def current() -> dict | None:
    """What this process claimed (Claim.describe()), or None."""
    return _claimed.describe() if _claimed is not None and _claimed.fds else None


def claim(gpus: int | None, slots_per_gpu: int = 1, pool_dir: Path | None = None,
          stop=lambda: False) -> Claim | None:
    """Take slots on `gpus` devices and set CUDA_VISIBLE_DEVICES to them; None where there is nothing to pin."""
    global _claimed
    if _claimed is not None and _claimed.fds:
        return _claimed
    if not gpus or os.environ.get("SLURM_JOB_ID"):
        return None  # a CPU job, or SLURM already set CUDA_VISIBLE_DEVICES
    devices = visible_devices()
    if not devices:
        log.info("no GPUs listed (CUDA_VISIBLE_DEVICES unset or hidden, nvidia-smi finds none): no device claimed")
        return None
    if gpus > len(devices):
        raise ValueError(f"the job was given {gpus} GPUs but only {len(devices)} are listed: {','.join(devices)}")
    pool = Path(pool_dir or os.environ.get("TRIFECTA_GPU_POOL") or DEFAULT_POOL)
    with contextlib.suppress(FileExistsError):
        pool.mkdir(parents=True)
        pool.chmod(0o1777)  # world-writable and sticky, as /tmp: every user's jobs share one pool
    waited = None
    while not (taken := _try_take(pool, devices, gpus, slots_per_gpu)):
        if waited is None:
            waited = time.monotonic()
            log.info("waiting for %d free GPU slot(s) in %s: %s", gpus, pool, _holders(pool, devices, slots_per_gpu))
        if stop():
            raise GpuWaitStopped(f"stopped while waiting for {gpus} free GPU slot(s) in {pool}")
        time.sleep(POLL_S)
    slots, fds = zip(*taken.values())
    for fd in fds:  # so that a job that has to wait can name this one
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder()).encode(), 0)
    _claimed = got = Claim(list(taken), list(slots), slots_per_gpu, pool, list(fds))
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(got.devices)
    log.info("claimed GPU %s (slot %s of %d) in %s%s", ",".join(got.devices), ",".join(map(str, got.slots)),
             slots_per_gpu, pool, f" after waiting {time.monotonic() - waited:.0f} s" if waited is not None else "")
    return got
