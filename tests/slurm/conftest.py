"""A running SLURM cluster for the tests in this folder, e.g. the local one of .ci/slurm/up.sh.

Start it with `bash .ci/slurm/up.sh /tmp/trifecta-slurm && source /tmp/trifecta-slurm/env.sh`. Without an
answering cluster these tests are skipped, or fail when TRIFECTA_REQUIRE_SLURM=1 (as in CI).
"""

import os
import subprocess

import pytest

PARTITIONS = {"debug", "urgent"}  # urgent (higher priority tier) preempts debug


def query(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, check=True).stdout


def cluster_problem() -> str | None:
    """Why the cluster cannot run these tests, or None if it can."""
    if "SLURM_CONF" not in os.environ:  # set by the cluster's env.sh; without it sinfo waits ~10 s for nothing
        return "SLURM_CONF is not set"
    try:
        partitions = {p.rstrip("*") for p in query("sinfo", "-h", "-o", "%P").split()}
        query("sacct", "-n", "-X", "-S", "now", "-o", "JobID")  # the executor plugin polls job states with sacct
    except FileNotFoundError as e:
        return f"no SLURM client ({e.filename} not found)"
    except subprocess.CalledProcessError as e:
        return f"{' '.join(e.cmd)} failed: {e.stderr.strip()}"
    except subprocess.TimeoutExpired as e:
        return f"{' '.join(e.cmd)} did not answer in {e.timeout} s"
    if not PARTITIONS <= partitions:
        return f"partitions {sorted(PARTITIONS - partitions)} missing (found {sorted(partitions)})"
    return None


@pytest.fixture(scope="session", autouse=True)
def slurm_cluster():
    """Skip (or, with TRIFECTA_REQUIRE_SLURM=1, fail) every test here unless a SLURM cluster answers."""
    problem = cluster_problem()
    if problem:
        hint = "start one with: bash .ci/slurm/up.sh /tmp/trifecta-slurm && source /tmp/trifecta-slurm/env.sh"
        if os.environ.get("TRIFECTA_REQUIRE_SLURM") == "1":
            pytest.fail(f"TRIFECTA_REQUIRE_SLURM=1 but no usable SLURM cluster: {problem}; {hint}", pytrace=False)
        pytest.skip(f"no SLURM cluster: {problem} ({hint})")
    return {"cpus": int(query("sinfo", "-h", "-p", "urgent", "-o", "%c").split()[0])}
