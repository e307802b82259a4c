"""Lineage and audit: a clean set of runs passes; tampering with a metrics file, a snapshot, a provenance
record or a table is caught, naming the cell and the file."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import write_finished_run
from tests.fakedata import write_fake_dataset
from trifecta.analysis import collect, tables
from trifecta.provenance import audit, lineage
from trifecta.planning import grid
from trifecta.identity.codehash import data_checksums
from trifecta.identity.runcode import RunCode, run_code
from trifecta.training.settings import resolve_settings
from trifecta.training.rundir import sha256_file

HEX = "ab" * 32


SETTINGS = {"epochs": 100, "eval_epochs": [10, 100]}  # the grid's, for every run of the fixture
GRID = [{"name": "table1_cells", "datasets": ["cifar10"], "archs": ["s"], "algos": ["tff", "symba-bn"],
         "seeds": [0, 1], "settings": SETTINGS}]


def environment(root) -> dict:
    """run.json's environment: the list of installed distributions, kept once in the store."""
    listing = Path(root) / "store/environments/0123.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("python==3.11.7\nplatform==Linux\ntorch==2.14.1\n")
    return {"sha256": sha256_file(listing), "distributions": 1, "file": str(listing)}


def write_run(root, dataset, arch, algo, seed, accs: dict, settings=SETTINGS) -> Path:
    """A finished run directory as `trifecta train` leaves it, with run.json and snapshots, trained with
    `settings`, this checkout's training code and the data files in root/data; returns metrics.json."""
    identity_settings = json.loads(json.dumps(resolve_settings(settings, algo, dataset).identity_dict()))
    metrics = write_finished_run(root, dataset, arch, algo, seed, accs, settings=identity_settings,
                                 training_code=run_code(dataset, arch, algo).sha256,
                                 data=data_checksums(dataset, Path(root) / "data"))
    run_dir = metrics.parent
    summary = json.loads(metrics.read_text())
    identity, identity_sha = summary["identity"], summary["identity_sha256"]
    snap_dir = run_dir / "store" / "id"
    snap_dir.mkdir(parents=True)
    snapshots = {}
    for epoch in accs:
        snap = snap_dir / f"snapshot_epoch_{epoch:04d}.pt"
        snap.write_bytes(f"weights of {dataset}/{algo}/{seed} at {epoch}".encode())
        snapshots[str(epoch)] = {"path": str(snap), "sha256": sha256_file(snap)}
    record = {**identity, "identity_sha256": identity_sha, "status": "complete",
              "git": {"commit": "c" * 40, "dirty": False}, "source_sha256": HEX,
              "versions": {"python": "3.11", "torch": "2.14", "torchvision": "0.29", "numpy": "2.4", "cuda": None,
                           "cudnn": None},
              "device": {"type": "cpu", "name": "x86_64"}, "host": "h", "slurm_job_id": None,
              "environment": environment(root), "started": "t0", "finished": "t1", "epoch_wall_s": {},
              "resumes": [], "snapshots": snapshots}
    (run_dir / "run.json").write_text(json.dumps(record))
    return metrics


@pytest.fixture
def results(tmp_path, monkeypatch):
    """Two seeds of two Table 1 cells (cifar10/s at epoch 100), tables and lineage written."""
    monkeypatch.chdir(tmp_path)
    write_fake_dataset("cifar10", tmp_path / "data")
    for algo in ("tff", "symba-bn"):
        for seed in (0, 1):
            acc = 0.6 + 0.05 * seed + (0.1 if algo == "tff" else 0)
            write_run(tmp_path, "cifar10", "s", algo, seed, {10: [0.3] * 6, 100: [0.5, 0.55, 0.6, 0.6, 0.6, acc]})
    make_lineage()
    return tmp_path


def make_lineage(grid=GRID, collected=True) -> None:
    """runs.csv, layers.csv (unless `collected` is False: those on disk), Table 1 and the lineage (with the grid)
    from the run directories under ./train, as the workflow makes them."""
    metrics = sorted(str(p) for p in Path("train").glob("*/*/*/seed*/metrics.json"))
    if collected:
        assert collect.main(["--runs", *metrics, "--out", "tables/runs.csv", "--layers-out", "tables/layers.csv",
                             "--lineage", "tables/runs.lineage.json"]) == 0
    assert tables.main(["--metrics", *metrics, "--out-dir", "tables", "--table", "table1"]) == 0
    assert lineage.main(["tables/runs.lineage.json", "tables/table1.lineage.json", "--out", "lineage.json",
                         "--grid", json.dumps(grid), "--data-dir", "data"]) == 0


def run_audit(capsys) -> tuple[int, str]:
    code = audit.main(["lineage.json", "--out", "audit.txt"])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_clean_results_pass_and_lineage_names_runs_and_hashes(results, capsys):
    code, out = run_audit(capsys)
    assert code == 0 and "PASSED: 0 failures" in out and (results / "audit.txt").exists()
    data = json.loads((results / "lineage.json").read_text())
    cell = next(a for a in data["artefacts"] if a["id"] == "table1 [OLU+BN @ 100 | SymBa (alpha=4)]")
    assert cell["runs"] == ["cifar10/s/tff/seed0", "cifar10/s/tff/seed1"] and cell["value"]["n"] == 2
    run = data["runs"]["cifar10/s/tff/seed0"]
    assert set(run["files"]) == set(lineage.RUN_FILES) and all(len(h) == 64 for h in run["files"].values())
    assert set(run["snapshots"]) == {"10", "100"} and run["provenance"]["git"]["commit"] == "c" * 40
    assert "tables/table1.csv" in data["files"]


def test_tampered_metrics_file_is_caught(results, capsys):
    path = results / "train/cifar10/s/tff/seed1/metrics.json"
    summary = json.loads(path.read_text())
    summary["evals"]["100"]["acc_last"] = 0.99
    path.write_text(json.dumps(summary))
    code, out = run_audit(capsys)
    assert code == 1 and not (results / "audit.txt").exists()
    assert f"{path.relative_to(results)}: sha256" in out  # its hash no longer matches
    assert "table1 [OLU+BN @ 100 | SymBa (alpha=4)]: tables/table1.csv says" in out  # the cell, recomputed
    assert "epoch 100 acc_last differs from eval.csv" in out


def test_tampered_snapshot_is_caught(results, capsys):
    snap = results / "train/cifar10/s/symba-bn/seed0/store/id/snapshot_epoch_0100.pt"
    snap.write_bytes(b"other weights")
    code, out = run_audit(capsys)
    assert code == 1 and "snapshot epoch 100" in out and str(snap) in out
    assert "used by table1 [BN @ 100 | SymBa (alpha=4)]" in out  # the cell that rests on it


def test_incomplete_provenance_record_is_caught(results, capsys):
    path = results / "train/cifar10/s/tff/seed0/run.json"
    record = json.loads(path.read_text())
    record["git"]["commit"] = None
    del record["data"]
    record["versions"].pop("torch")
    path.write_text(json.dumps(record))
    code, out = run_audit(capsys)
    assert code == 1
    assert f"{path.relative_to(results)}: incomplete provenance: git.commit, versions.torch, data" in out


def test_edited_table_value_is_caught(results, capsys):
    table = pd.read_csv(results / "tables/table1.csv")
    row = (table["row"] == "BN") & (table["column"] == "SymBa (alpha=4)")
    table.loc[row, "ours_mean"] += 1.0
    table.to_csv(results / "tables/table1.csv", index=False)
    code, out = run_audit(capsys)
    assert code == 1 and "output: tables/table1.csv: sha256" in out
    assert "table1 [BN @ 100 | SymBa (alpha=4)]: tables/table1.csv says 63.5000" in out


def test_identity_disagreement_is_caught(results, capsys):
    path = results / "train/cifar10/s/symba-bn/seed1/run.json"
    record = json.loads(path.read_text())
    record["training_code"] = "cd" * 32  # run.json names other code than metrics.json
    path.write_text(json.dumps(record))
    code, out = run_audit(capsys)
    assert code == 1 and "its identity differs from metrics.json's in training_code" in out


def test_missing_provenance_fields_are_named():
    assert audit.missing_provenance({}) == [
        "git.commit", "git.dirty", "source_sha256", "training_code", "versions.python", "versions.torch",
        "versions.torchvision", "versions.numpy", "versions.cuda", "versions.cudnn", "environment", "data",
        "started",
        "finished", "identity_sha256", "settings", "status (is None, not 'complete')"]


@pytest.mark.parametrize("name, row", [("eval.csv", "10,1,0.3,5.0,0.2"), ("steps.csv", "1,0,2,0.6,1.0")])
def test_a_repeated_log_row_is_caught(results, capsys, name, row):
    """A restart that appended to the old logs doubles rows; metrics.json may agree with them, the audit does not."""
    path = results / "train/cifar10/s/symba-bn/seed1" / name
    path.write_text(path.read_text() + row + "\n")
    code, out = run_audit(capsys)
    assert code == 1 and f"{path.relative_to(results)}: 1 rows repeat an earlier" in out


# ---- Runs against the grid and against each other (issue 19, case 4) ----

def retrain(results, algo, seed, settings) -> None:
    """The run trained again with other settings, as `trifecta train` would leave it."""
    shutil.rmtree(results / f"train/cifar10/s/{algo}/seed{seed}")
    acc = 0.6 + 0.05 * seed + (0.1 if algo == "tff" else 0)
    write_run(results, "cifar10", "s", algo, seed, {10: [0.3] * 6, 100: [0.5, 0.55, 0.6, 0.6, 0.6, acc]}, settings)


def test_a_cell_of_runs_with_other_settings_fails(results, capsys):
    """Seed 1 trained at another width, rate and without augmentation: the cell and its lineage are consistent,
    the audit is not fooled."""
    retrain(results, "tff", 1, {**SETTINGS, "width": 0.125, "lr_schedule": "0:1e-2", "augment": False})
    make_lineage()
    code, out = run_audit(capsys)
    assert code == 1
    path = "train/cifar10/s/tff/seed1/metrics.json"
    assert f"run cifar10/s/tff/seed1: {path}: settings.width is 0.125, grid entry 'table1_cells' gives 1.0" in out
    assert f"run cifar10/s/tff/seed1: {path}: settings.augment is False, grid entry 'table1_cells' gives True" in out
    assert ("table1 [OLU+BN @ 100 | SymBa (alpha=4)]: runs cifar10/s/tff/seed0 and cifar10/s/tff/seed1 differ in "
            "settings.width (1.0 vs 0.125)") in out
    assert "cifar10/s/symba-bn" not in out.split("FAIL", 1)[1]  # the other cell is fine


def test_runs_of_a_changed_config_fail(results, capsys):
    """The same runs audited against a grid that now asks for 200 epochs: every run is named, with the key."""
    make_lineage([{**GRID[0], "settings": {**SETTINGS, "epochs": 200}}])
    code, out = run_audit(capsys)
    assert code == 1 and out.count("settings.epochs is 100, grid entry 'table1_cells' gives 200") == 4


def test_a_hand_edited_runs_csv_is_caught(results, capsys):
    """runs.csv edited and the lineage made again (so its hash agrees): recollected from the runs, it differs."""
    runs = pd.read_csv(results / "tables/runs.csv")
    runs.loc[0, "acc_last"] = 0.99
    runs.to_csv(results / "tables/runs.csv", index=False)
    make_lineage(collected=False)
    code, out = run_audit(capsys)
    assert code == 1 and "runs.csv: tables/runs.csv is not what its 4 runs' metrics.json and eval.csv give" in out
    assert "layers.csv" not in out


def test_a_run_of_the_grid_missing_from_the_lineage_fails(results, capsys):
    make_lineage([{**GRID[0], "seeds": [0, 1, 2]}])
    code, out = run_audit(capsys)
    assert code == 1
    assert "run cifar10/s/tff/seed2: in grid entry 'table1_cells' but not in the lineage" in out
    assert "run cifar10/s/symba-bn/seed2: in grid entry 'table1_cells' but not in the lineage" in out


def test_a_run_outside_the_grid_fails(results, capsys):
    make_lineage([{**GRID[0], "algos": ["tff"]}])
    code, out = run_audit(capsys)
    assert code == 1 and "run cifar10/s/symba-bn/seed0: train/cifar10/s/symba-bn/seed0/metrics.json: not in the grid" in out


def test_changed_data_or_training_code_fails(results, capsys, monkeypatch):
    batch = results / "data/cifar-10-batches-py/data_batch_1"
    batch.write_bytes(batch.read_bytes() + b"x")  # the data file changed since the runs were trained
    recorded = run_code("cifar10", "s", "tff").sha256
    monkeypatch.setattr(grid, "run_code", lambda *run: RunCode("cd" * 32, {}))  # and so did the training code
    code, out = run_audit(capsys)
    assert code == 1
    assert "settings" not in out and out.count("data.cifar-10-batches-py/data_batch_1 is '") == 4
    assert "the file in data gives" in out
    assert out.count("training_code is '") == 4 and out.count("this checkout's training code gives") == 4
    assert f"run cifar10/s/tff/seed0: train/cifar10/s/tff/seed0/metrics.json: training_code is '{recorded[:37]}…" in out


def test_a_recipe_the_grid_does_not_give_fails(results, capsys):
    """precision=auto on a CPU is float32: a run recorded as bfloat16 there is not the grid's; and a recipe for
    another device than the one run.json names fails too."""
    run_dir = results / "train/cifar10/s/tff/seed0"
    rewrite_identity(run_dir, recipe={"device": "cpu", "precision": "bf16"})
    other = results / "train/cifar10/s/tff/seed1"
    rewrite_identity(other, recipe={"device": "cuda", "precision": "bf16"})
    code, out = run_audit(capsys)
    assert code == 1
    assert ("run cifar10/s/tff/seed0: train/cifar10/s/tff/seed0/metrics.json: recipe.precision is 'bf16', grid "
            "entry 'table1_cells' (precision auto on cpu) gives 'fp32'") in out
    assert "run cifar10/s/tff/seed1: train/cifar10/s/tff/seed1/metrics.json: the identity's recipe is not for the " \
        "device it ran on (cpu)" in out
    assert out.count("recipe.precision is") == 1  # bf16 on cuda is what the grid's auto gives there


def rewrite_identity(run_dir, **changes):
    """Change a finished run's identity in metrics.json and run.json consistently (hash included)."""
    from trifecta.identity.codehash import identity_sha256
    summary = json.loads((run_dir / "metrics.json").read_text())
    summary["identity"].update(changes)
    summary["identity_sha256"] = identity_sha256(summary["identity"])
    record = json.loads((run_dir / "run.json").read_text())
    record.update(changes, identity_sha256=summary["identity_sha256"])
    (run_dir / "metrics.json").write_text(json.dumps(summary))
    (run_dir / "run.json").write_text(json.dumps(record))
    make_lineage(GRID)


def test_a_lineage_without_its_grid_fails(results, capsys):
    record = json.loads((results / "lineage.json").read_text())
    del record["grid"]
    (results / "lineage.json").write_text(json.dumps(record))
    code, out = run_audit(capsys)
    assert code == 1 and "lineage: it names no grid" in out


def test_a_truncated_metrics_file_is_named(results, capsys):
    path = results / "train/cifar10/s/tff/seed0/metrics.json"
    path.write_text(path.read_text()[:50])
    code, out = run_audit(capsys)
    assert code == 1 and f"{path.relative_to(results)} is not valid JSON" in out


def test_the_report_lists_the_environments_behind_the_tables(results, capsys):
    code, out = run_audit(capsys)
    listing = results / "store/environments/0123.txt"
    assert code == 0 and f"environment {sha256_file(listing)[:16]} (1 distributions, python 3.11, torch 2.14, " \
        f"x86_64; {listing}): 4 runs, behind runs.csv, table1" in out


def test_an_altered_environment_list_is_caught(results, capsys):
    listing = results / "store/environments/0123.txt"
    listing.write_text(listing.read_text() + "numpy==1.0\n")
    code, out = run_audit(capsys)
    assert code == 1 and "the environment's list does not hash to run.json's environment.sha256" in out
