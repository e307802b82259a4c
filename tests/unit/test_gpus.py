"""GPU slots: concurrent jobs get distinct devices, a killed job's slot is taken again, a job waits rather than
share a slot, and CPU jobs, SLURM jobs and machines without GPUs are left alone. Devices are faked with
CUDA_VISIBLE_DEVICES; the jobs are real processes of plain Python (no torch), so the OS locks are real."""

import collections
import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from trifecta.operations import gpus
from trifecta.operations.gpus import GpuWaitStopped, claim

FOUR = "0,1,2,3"
SRC = str(Path(gpus.__file__).parents[1])
# A GPU job: claim, say what it got, run until killed. It gives up after 5 s of waiting, so a broken claim
# fails a test instead of hanging it.
JOB = ("import os, sys, time; from trifecta.operations import gpus; gpus.POLL_S = 0.05; t = time.monotonic(); "
       "c = gpus.claim(1, int(sys.argv[1]), sys.argv[2], stop=lambda: time.monotonic() - t > 5); "
       "print(os.environ['CUDA_VISIBLE_DEVICES'], *c.slots, flush=True); time.sleep(60)")


@pytest.fixture
def env(monkeypatch):
    """Four fake GPUs, no SLURM, a fast poll, no claim yet in this process."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", FOUR)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setattr(gpus, "POLL_S", 0.01)
    monkeypatch.setattr(gpus, "_claimed", None)


@pytest.fixture
def start(tmp_path, env):
    """start(n, slots_per_gpu): n jobs started together, each with (process, device, slot); killed at the end."""
    procs = []

    def start(n, slots_per_gpu=1):
        new = [subprocess.Popen([sys.executable, "-c", JOB, str(slots_per_gpu), str(tmp_path / "pool")],
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": SRC})
               for _ in range(n)]
        procs.extend(new)
        got = [(p, *p.stdout.readline().split()) for p in new]
        assert all(len(g) == 3 for g in got), "a job got no device"
        return [(p, device, int(slot)) for p, device, slot in got]
    yield start
    for p in procs:
        p.kill()
        p.wait()


def stop_after(polls: int):
    """A stop callback that asks to stop on its `polls`-th call."""
    calls = []
    return lambda: calls.append(1) or len(calls) >= polls


@pytest.mark.parametrize("slots_per_gpu", [1, 2])
def test_concurrent_jobs_spread_over_the_devices(start, slots_per_gpu, tmp_path):
    jobs = start(4, slots_per_gpu)
    assert sorted(device for _, device, _ in jobs) == ["0", "1", "2", "3"]
    assert all(slot == 0 for _, _, slot in jobs)  # nobody doubles up while a device is idle
    pool = tmp_path / "pool"
    assert stat.S_IMODE(pool.stat().st_mode) == 0o1777  # shared by every user of the machine
    for p, device, _ in jobs:
        lock = pool / f"gpu-{device}.slot0"
        assert stat.S_IMODE(lock.stat().st_mode) == 0o666
        assert json.loads(lock.read_text())["pid"] == p.pid


def test_a_killed_jobs_slot_goes_to_the_next_job(start):
    jobs = start(4)
    victim = next(j for j in jobs if j[1] == "2")
    victim[0].send_signal(signal.SIGKILL)  # no clean-up: the OS alone frees the slot
    victim[0].wait()
    assert [(device, slot) for _, device, slot in start(1)] == [("2", 0)]


def test_a_fifth_job_waits_naming_the_holders(start, tmp_path, caplog):
    caplog.set_level("INFO", logger="trifecta.gpus")
    jobs = start(4)
    with pytest.raises(GpuWaitStopped):
        claim(1, pool_dir=tmp_path / "pool", stop=stop_after(3))
    assert os.environ["CUDA_VISIBLE_DEVICES"] == FOUR  # not given a device
    holder = next(p for p, device, _ in jobs if device == "1")
    assert f"GPU 1 slot 0: {os.uname().nodename} pid {holder.pid}" in caplog.text


def test_two_slots_per_gpu_put_eight_jobs_two_on_each_device(start, tmp_path):
    jobs = start(8, slots_per_gpu=2)
    assert collections.Counter(device for _, device, _ in jobs) == {"0": 2, "1": 2, "2": 2, "3": 2}
    assert {(device, slot) for _, device, slot in jobs} == {(d, s) for d in "0123" for s in (0, 1)}
    with pytest.raises(GpuWaitStopped):  # a ninth waits
        claim(1, slots_per_gpu=2, pool_dir=tmp_path / "pool", stop=stop_after(2))


def test_a_multi_gpu_job_takes_distinct_devices_or_waits_holding_none(env, tmp_path, monkeypatch):
    pool = tmp_path / "pool"
    mine = claim(2, slots_per_gpu=2, pool_dir=pool)
    assert mine.describe() == {"devices": ["0", "1"], "slots": [0, 0], "slots_per_gpu": 2, "pool": str(pool)}
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"

    def again(n, visible="0,1,2", **kw):  # as a new job would, not knowing this process's claims
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        monkeypatch.setattr(gpus, "_claimed", None)
        return claim(n, pool_dir=pool, stop=stop_after(2), **kw)
    with pytest.raises(GpuWaitStopped):  # three devices, two of them taken
        again(2)
    third = again(1)
    assert third.devices == ["2"]  # the waiter held nothing while it waited
    mine.release()
    assert again(1).devices == ["0"]  # released slots are free again
    both = again(2, "1,2", slots_per_gpu=2)  # GPU 2 has a job on slot 0
    assert (both.devices, both.slots) == (["1", "2"], [0, 1])  # never two slots of GPU 1
    with pytest.raises(ValueError, match="given 4 GPUs but only 3 are listed"):
        again(4)


def test_a_second_claim_in_one_process_keeps_the_first(env, tmp_path):
    """Two commands run in one process (as tests do) must not wait for their own slot."""
    first = claim(1, pool_dir=tmp_path / "pool")
    assert claim(1, pool_dir=tmp_path / "pool", stop=stop_after(1)) is first
    first.release()
    assert claim(1, pool_dir=tmp_path / "pool").describe() == first.describe()  # released: claimed afresh


@pytest.mark.parametrize("gpus_given, slurm", [(0, None), (None, None), (1, "12345")])
def test_cpu_and_slurm_jobs_claim_nothing(env, tmp_path, monkeypatch, gpus_given, slurm):
    if slurm:
        monkeypatch.setenv("SLURM_JOB_ID", slurm)
    assert claim(gpus_given, pool_dir=tmp_path / "pool") is None
    assert os.environ["CUDA_VISIBLE_DEVICES"] == FOUR
    assert not (tmp_path / "pool").exists()


@pytest.mark.parametrize("visible", [None, "", "-1", "NoDevFiles"])
def test_no_devices_means_no_claim(env, tmp_path, monkeypatch, visible):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert gpus.detect_gpus() == []
    assert claim(1, pool_dir=tmp_path / "pool") is None
    assert os.environ.get("CUDA_VISIBLE_DEVICES") == visible


def test_without_cuda_visible_devices_the_gpus_come_from_nvidia_smi(env, tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\nprintf '0\\n1\\n'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "")  # so that the value claim() sets is undone afterwards
    monkeypatch.delenv("CUDA_DEVICE_ORDER")
    assert gpus.detect_gpus() == ["0", "1"]
    assert claim(1, pool_dir=tmp_path / "pool").devices == ["0"]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"  # nvidia-smi's numbering, not CUDA's fastest-first
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(gpus, "_claimed", None)  # as a new job on this machine
    assert claim(1, pool_dir=tmp_path / "pool") is None


def test_gpu_uuids_work_and_no_device_id_leaves_the_pool(env, tmp_path, monkeypatch):
    uuids = ["GPU-8f3a1c2e-1b2c-4d5e-9f00-0123456789ab", "GPU-00c0ffee-aaaa-bbbb-cccc-ddddeeeeffff"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ", ".join(uuids))
    pool = tmp_path / "pool"
    monkeypatch.setenv("TRIFECTA_GPU_POOL", str(pool))
    first = claim(1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ", ".join(uuids))  # as a second job sees it
    monkeypatch.setattr(gpus, "_claimed", None)
    second = claim(1, pool_dir=pool, stop=stop_after(2))
    assert [first.devices, second.devices] == [[uuids[0]], [uuids[1]]]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == uuids[1]
    assert sorted(p.name for p in pool.iterdir()) == sorted(f"gpu-{u}.slot0" for u in uuids)
    assert gpus.slot_path(pool, "../../etc/passwd", 0).parent == pool
