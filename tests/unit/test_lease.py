"""Leases: one holder at a time, a waiter that names the holder, release by the OS when the holder is killed."""

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys

import pytest

from trifecta.operations import lease
from trifecta.operations.lease import Lease, LeaseError, LeaseWaitStopped

HOLD = "import sys, time; from trifecta.operations.lease import Lease; Lease(sys.argv[1], 'test').acquire(); " \
       "print('held', flush=True); time.sleep(120)"


@pytest.fixture
def holder(tmp_path):
    """Another process that holds the lease on tmp_path/folder until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "folder")], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    yield proc
    proc.kill()
    proc.wait()


def history(folder) -> list[str]:
    return [line.split(" ", 1)[1] for line in (folder / "lease.log").read_text().splitlines()]


def test_a_second_holder_waits_naming_the_first_until_it_is_killed(tmp_path, holder, monkeypatch, caplog):
    caplog.set_level("INFO", logger="trifecta.lease")
    monkeypatch.setattr(lease, "POLL_S", 0.1)
    folder = tmp_path / "folder"
    assert json.loads((folder / "lease").read_text())["pid"] == holder.pid
    polls = []

    def stop():  # the third poll kills the holder, as SLURM or an OOM kill would: SIGKILL, no clean-up
        polls.append(1)
        if len(polls) == 3:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
        return False
    mine = Lease(folder, "test")
    mine.acquire(stop)
    try:
        assert len(polls) >= 3
        assert f"waiting for the test: held by {os.uname().nodename} pid {holder.pid}" in caplog.text
        assert json.loads((folder / "lease").read_text())["pid"] == os.getpid()
        events = history(folder)
        assert events[0].startswith(f"taken by {os.uname().nodename} pid {holder.pid}")  # never released: killed
        assert events[1].startswith(f"taken by {os.uname().nodename} pid {os.getpid()}")
    finally:
        mine.release()
    assert history(folder)[2].startswith(f"released by {os.uname().nodename} pid {os.getpid()}")
    assert (folder / "lease").read_text() == ""  # no holder named once released


def test_a_stop_request_ends_the_wait(tmp_path, holder, monkeypatch):
    monkeypatch.setattr(lease, "POLL_S", 0.05)
    with pytest.raises(LeaseWaitStopped, match="stopped while waiting for the test"):
        Lease(tmp_path / "folder", "test").acquire(stop=lambda: True)


def test_two_leases_in_one_process_exclude_each_other(tmp_path, monkeypatch):
    """flock belongs to the open file: even one process cannot take a held lease twice (the same run twice in
    one Python process waits, it never writes beside itself)."""
    monkeypatch.setattr(lease, "POLL_S", 0.01)
    with Lease(tmp_path, "test").held():
        with pytest.raises(LeaseWaitStopped):
            Lease(tmp_path, "test").acquire(stop=lambda: True)
    with Lease(tmp_path, "test").held():  # released at the end of the with-block
        pass


def test_a_filesystem_without_locks_is_an_error_with_the_fix(tmp_path, monkeypatch):
    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")
    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(LeaseError, match=r"does not support flock: on Lustre mount with -o flock.*TRIFECTA_LEASE=off"):
        Lease(tmp_path, "test").acquire()


def test_leases_can_be_turned_off(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TRIFECTA_LEASE", "off")
    with Lease(tmp_path / "f", "test").held():
        pass
    assert "TRIFECTA_LEASE=off: test taken without a lock" in caplog.text
    assert not (tmp_path / "f").exists()

