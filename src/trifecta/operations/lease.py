"""One writer at a time: an exclusive lease on a folder, held for a whole run and released by the OS when the
process ends, however it ends (SIGKILL, a node failure, an out-of-memory kill included).

    with Lease(folder, "run store of identity 1a2b...").held(stop):
        ...  # nobody else holds it

The lease is `fcntl.flock` on FOLDER/lease (or another name). The holder writes who it is into that file
(host, pid, SLURM job, since when), so a process that has to wait names the holder in its log, and appends
"taken" and "released" lines to FOLDER/lease.log: the folder's history of writers. A second process polls until the holder is gone; a
stop request (SIGTERM) while it waits ends the wait.

Shared filesystems: flock works across nodes on NFS (v4, or v3 with the lock manager; Linux emulates it with
byte-range locks), GPFS and BeeGFS with global locks, and on Lustre only when the clients mount with `-o flock`
(`localflock` locks within one node only). Where the filesystem refuses locks the lease raises LeaseError with
the fix; TRIFECTA_LEASE=off trains without leases (a warning in the log and `"lease": "off"` in run.json),
which leaves two copies of one job free to write the same files.
"""

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger("trifecta.lease")
POLL_S = 2.0  # seconds between attempts while another process holds the lease
UNSUPPORTED = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL}
OFF = "off"  # TRIFECTA_LEASE=off: no locking (filesystems without flock)


class LeaseError(RuntimeError):
    """The filesystem cannot lock the lease file."""


class LeaseWaitStopped(RuntimeError):
    """A stop was requested (SIGTERM, SIGUSR1) while waiting for another holder."""


def holder() -> dict:
    """Who this process is: host, pid, SLURM job, since when."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def describe(who: dict | None) -> str:
    if not who:
        return "another process (not yet identified)"
    job = f", SLURM job {who['slurm_job_id']}" if who.get("slurm_job_id") else ""
    return f"{who.get('host')} pid {who.get('pid')}{job}, since {who.get('since')}"


def enabled() -> bool:
    return os.environ.get("TRIFECTA_LEASE", "").strip().lower() != OFF


class Lease:
    def __init__(self, folder: Path, what: str, name: str = "lease"):
        self.folder, self.what = Path(folder), what
        self.path = self.folder / name  # and its history beside it, NAME.log
        self.fd: int | None = None
        self.me: dict | None = None  # this process, while it holds the lease

    def read_holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None  # not written yet, or being rewritten

    def _try_lock(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError as err:
            if err.errno in UNSUPPORTED:
                raise LeaseError(
                    f"cannot lock {self.path}: {err.strerror}. The filesystem does not support flock: on Lustre "
                    "mount with -o flock, on NFS run the lock manager (NFSv4 or NFSv3 with lockd); or set "
                    "TRIFECTA_LEASE=off to train without leases (then no two copies of a job may run)") from None
            raise

    def acquire(self, stop=lambda: False) -> None:
        """Take the lease, waiting (and saying for whom) while another process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        waited = None
        try:
            while not self._try_lock():
                if waited is None:
                    waited = time.monotonic()
                    log.info("waiting for the %s: held by %s", self.what, describe(self.read_holder()))
                if stop():
                    raise LeaseWaitStopped(f"stopped while waiting for the {self.what}")
                time.sleep(POLL_S)
        except BaseException:
            os.close(self.fd)
            self.fd = None
            raise
        self.me = holder()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, json.dumps(self.me).encode(), 0)
        self._history(f"taken by {describe(self.me)}")
        if waited is not None:
            log.info("took the %s after waiting %.0f s", self.what, time.monotonic() - waited)

    def release(self) -> None:
        if self.fd is None:
            return
        self._history(f"released by {describe(self.me)}")
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def _history(self, event: str) -> None:
        with open(self.path.with_name(self.path.name + ".log"), "a") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')} {event}\n")

    @contextlib.contextmanager
    def held(self, stop=lambda: False):
        """The lease for the body of the with-block; without locking when TRIFECTA_LEASE=off."""
        if not enabled():
            log.warning("TRIFECTA_LEASE=off: %s taken without a lock", self.what)
            yield self
            return
        self.acquire(stop)
        try:
            yield self
        finally:
            self.release()
