"""`trifecta store`: the run store's identities listed (size, state, who shows and asks for each, last writer,
age) and pruned (what no run directory shows and no run of the grid asks for), never under a held lease."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trifecta.operations import store as run_store
from trifecta.planning.grid import Grid
from trifecta.planning.configfile import load_config
from trifecta.identity.codehash import data_checksums, identity_sha256
from trifecta.planning.runs import Run
from trifecta.operations.train import RunSpec, train

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"epochs": 1, "width": 0.0625, "batch_size": 64, "subset_train": 256, "subset_test": 100}
GRID_RUNS = [Run("mnist5k", "s", "tff", 0), Run("mnist5k", "s", "tff", 1)]
HOUR = 3600


class Workdir:
    """A workflow's folders in tmp_path: a config overlay with one grid entry (TFF/s of mnist5k, seeds 0 and 1),
    the run directories and the store."""

    def __init__(self, root: Path):
        self.root, self.store, self.train_dir = root, root / "store", root / "results/train"
        self.settings, self.datasets = dict(SETTINGS), ["mnist5k"]

    def overlay(self) -> Path:
        overlay = {"data_dir": str(self.root / "data"), "store_dir": str(self.store), "resources": {"gpu": 0},
                   "runs": [{"name": "one", "datasets": self.datasets, "archs": ["s"], "algos": ["tff"],
                             "seeds": [0, 1], "settings": self.settings}]}
        path = self.root / "overlay.yaml"
        path.write_text(yaml.safe_dump(overlay))
        return path

    def grid(self) -> Grid:
        return Grid.from_config(load_config([REPO / "config.yaml", self.overlay()]))

    def expected(self, run: Run) -> dict:
        """The identity the grid asks for on the CPU, data included."""
        return {**self.grid().expected_identity(run, "cpu"), "data": data_checksums("mnist5k", self.root / "data")}

    def train(self, run: Run) -> RunSpec:
        """Train a run of the grid as the workflow would with the current settings."""
        spec = RunSpec(run.dataset, run.arch, run.algo, run.seed, Path(run.dir(str(self.train_dir))),
                       self.root / "data", self.grid().settings(run), device="cpu", deterministic=True,
                       store_dir=self.store)
        train(spec)
        return spec

    def command(self, capsys, *args) -> list[str]:
        argv = [*args, "--config", str(REPO / "config.yaml"), "--configfile", str(self.overlay()),
                "--train-dir", str(self.train_dir)]
        assert run_store.main(argv) == 0
        return capsys.readouterr().out.splitlines()


@pytest.fixture
def work(tmp_path):
    return Workdir(tmp_path)


# ---- A store made by hand ----

def fake_identity(store: Path, identity: dict, state: str, size: int, host="node7", age_s=0.0) -> str:
    """A store folder as a run leaves it: run.json (status), `size` bytes of checkpoint, a lease history, and
    metrics.json when complete; every file last written `age_s` ago. Returns its name."""
    name = identity_sha256(identity)
    folder = store / name
    folder.mkdir(parents=True)
    status = {"complete": "complete", "failed": "failed", "partial": "interrupted"}[state]
    (folder / "run.json").write_text(json.dumps({**identity, "identity_sha256": name, "status": status,
                                                 "host": host, "slurm_job_id": "77"}))
    (folder / "resume_epoch_0001.pt").write_bytes(b"\0" * size)
    (folder / "lease.log").write_text(f"2026-12-07T05:00:00+0000 taken by {host} pid 123, SLURM job 77, since "
                                      f"2026-12-07T05:00:00+0000\n2026-12-07T06:00:00+0000 released by {host} "
                                      "pid 123, SLURM job 77, since 2026-12-07T05:00:00+0000\n")
    if state == "complete":
        (folder / "metrics.json").write_text(json.dumps({"identity": identity, "identity_sha256": name}))
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (time.time() - age_s, time.time() - age_s))
    return name


def show(train_dir: Path, run: Run, name: str, summary: bool = True) -> None:
    """A run directory showing identity `name`: metrics.json (a finished run) or only run.json."""
    folder = Path(run.dir(str(train_dir)))
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"identity_sha256": name}))
    if summary:
        (folder / "metrics.json").write_text(json.dumps({"identity_sha256": name}))


@pytest.fixture
def made(work):
    """Five identities: the grid's seed-0 run (complete, shown), its seed-1 run (partial, not yet shown), a failed
    run a directory outside the grid shows, and two that nothing uses (a complete one with another width, a
    partial one of another seed); beside them environments/ and a folder that is no identity."""
    seed0, seed1 = work.expected(GRID_RUNS[0]), work.expected(GRID_RUNS[1])
    names = {
        "used": fake_identity(work.store, seed0, "complete", 3_000_000, age_s=2 * HOUR),
        "asked": fake_identity(work.store, seed1, "partial", 1_000_000, host="node8"),
        "failed": fake_identity(work.store, {**seed0, "algo": "vff"}, "failed", 500_000),
        "wider": fake_identity(work.store, {**seed0, "settings": {**seed0["settings"], "width": 0.125}}, "complete",
                               4_000_000, age_s=30 * 24 * HOUR),
        "seed5": fake_identity(work.store, {**seed0, "seed": 5}, "partial", 2_000_000),
    }
    show(work.train_dir, GRID_RUNS[0], names["used"])
    show(work.train_dir, Run("mnist5k", "s", "vff", 0), names["failed"], summary=False)
    (work.store / "environments").mkdir()
    (work.store / "environments" / "0123456789abcdef.txt").write_text("torch==2.5\n")
    (work.store / "notes").mkdir()
    return names


def block(lines: list[str], name: str) -> list[str]:
    """An identity's lines of the listing: its own and the indented ones below it."""
    start = next(i for i, line in enumerate(lines) if line.startswith(name))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")), len(lines))
    return lines[start:end]


# ---- Listing ----

def test_the_listing_says_size_state_users_writer_and_age_of_each_identity(work, made, capsys):
    lines = work.command(capsys)
    used = block(lines, made["used"])
    assert used[0].split()[1:] == ["complete", "3.0", "MB", "2h00m", "node7", "pid", "123,", "SLURM", "job", "77"]
    assert f"  shown by {work.train_dir}/mnist5k/s/tff/seed0" in used
    assert "  asked for by grid entry one: mnist5k/s/tff/seed0" in used
    asked = block(lines, made["asked"])
    assert asked[0].split()[1:4] == ["partial", "1.0", "MB"] and "node8 pid 123" in asked[0]
    assert asked[1:] == ["  asked for by grid entry one: mnist5k/s/tff/seed1"]
    failed = block(lines, made["failed"])
    assert failed[0].split()[1] == "failed"
    assert failed[1:] == [f"  shown by {work.train_dir}/mnist5k/s/vff/seed0"]
    wider = block(lines, made["wider"])
    assert wider[0].split()[1:5] == ["complete", "4.0", "MB", "720h00m"]
    assert wider[1:] == ["  unused: no run directory shows it and no run of the grid asks for it"]
    assert block(lines, made["seed5"])[0].split()[1] == "partial"
    assert "environments" not in " ".join(line.split()[0] for line in lines if line)  # not an identity
    total = next(line for line in lines if line.startswith("5 identities"))
    assert total.startswith("5 identities, 10.5 MB: 2 complete, 2 partial, 1 failed; 2 unused (6.0 MB)")


def test_an_empty_store(work, capsys):
    assert work.command(capsys) == [f"no identities in {work.store}"]


# ---- Pruning ----

def test_prune_lists_what_it_would_remove_and_removes_nothing(work, made, capsys):
    before = sorted(p.name for p in work.store.iterdir())
    lines = work.command(capsys, "prune")
    assert lines[0] == "would remove 2 identities, 6.0 MB (`trifecta store prune --yes` removes them):"
    assert sorted(line.split()[0] for line in lines[1:3]) == sorted([made["wider"], made["seed5"]])
    assert len(lines) == 3
    assert sorted(p.name for p in work.store.iterdir()) == before


def test_prune_yes_removes_exactly_the_unused_identities(work, made, capsys):
    lines = work.command(capsys, "prune", "--yes")
    assert lines[-1] == "removed 2 identities, 6.0 MB"
    kept = {made[key] for key in ("used", "asked", "failed")}
    assert {p.name for p in work.store.iterdir()} == kept | {"environments", "notes"}
    assert (work.store / "environments" / "0123456789abcdef.txt").read_text() == "torch==2.5\n"
    assert work.command(capsys, "prune") == ["nothing to remove: every identity is used"]


def test_an_identity_whose_lease_a_running_job_holds_is_never_removed(work, made, capsys):
    code = ("import sys, time; from trifecta.operations.lease import Lease; Lease(sys.argv[1], 'identity').acquire(); "
            "print('held', flush=True); time.sleep(120)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(work.store / made["wider"])], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        listed = block(work.command(capsys), made["wider"])
        assert f"  held by {socket.gethostname()} pid {holder.pid}" in "\n".join(listed)
        lines = work.command(capsys, "prune")
        assert lines[:2] == ["would remove 1 identity, 2.0 MB (`trifecta store prune --yes` removes them):",
                             f"  {made['seed5']}  partial      2.0 MB    0m00s"]
        assert lines[2].startswith(f"kept {made['wider']}: its lease is held by {socket.gethostname()} pid "
                                   f"{holder.pid}")
        lines = work.command(capsys, "prune", "--yes")
        assert any(line.startswith(f"not removed {made['wider']}: its lease is held by {socket.gethostname()} "
                                   f"pid {holder.pid}") for line in lines)
        assert lines[-1] == "removed 1 identity, 2.0 MB"
        assert (work.store / made["wider"] / "metrics.json").exists()
        assert not (work.store / made["seed5"]).exists()
    finally:
        holder.kill()
        holder.wait()
    work.command(capsys, "prune", "--yes")  # the job has ended: now it goes
    assert not (work.store / made["wider"]).exists()


def test_identities_of_a_dataset_whose_files_cannot_be_read_are_kept(work, capsys):
    """mnist's files are not in the data directory: whether the grid asks for its identity cannot be judged."""
    name = fake_identity(work.store, {**work.expected(GRID_RUNS[0]), "dataset": "mnist"}, "complete", 1000)
    work.datasets = ["mnist"]
    lines = work.command(capsys, "prune", "--yes")
    assert lines[0] == "nothing to remove: every identity is used"
    assert lines[1].startswith(f"kept {name}: dataset mnist: cannot be read (")
    assert (work.store / name).exists()


# ---- Done when: a setting changed and changed back, then pruned ----

def test_after_a_setting_changed_and_changed_back_prune_leaves_what_the_run_directories_show(work, capsys):
    first = [work.train(run) for run in GRID_RUNS]
    work.settings["width"] = 0.125
    changed = [work.train(run) for run in GRID_RUNS]
    work.settings["width"] = SETTINGS["width"]  # back: shown again from the store without training
    again = [work.train(run) for run in GRID_RUNS]
    assert [s.identity_hash for s in again] == [s.identity_hash for s in first]
    assert {p.name for p in work.store.iterdir()} >= {s.identity_hash for s in first + changed}
    listed = work.command(capsys)  # the grid asks for the identities trained with its settings, and no other
    for spec, run in zip(first, GRID_RUNS):
        assert f"  asked for by grid entry one: {run.id}" in block(listed, spec.identity_hash)
    for spec in changed:
        assert block(listed, spec.identity_hash)[1:] == [
            "  unused: no run directory shows it and no run of the grid asks for it"]
    lines = work.command(capsys, "prune", "--yes")
    assert sorted(line.split()[1] for line in lines if line.startswith("removed ") and "identities" not in line) \
        == sorted(s.identity_hash for s in changed)
    shown = {json.loads((s.out_dir / "metrics.json").read_text())["identity_sha256"] for s in again}
    assert {p.name for p in work.store.iterdir() if p.name != "environments"} == shown
    assert any((work.store / "environments").iterdir())  # shared by the runs: kept


def test_store_imports_no_torch():
    code = "import sys, trifecta.operations.store; assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
