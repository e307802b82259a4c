"""Lineage: fragments joined, every run's files and snapshots hashed, a moved results folder still found."""

import json
import shutil

import pytest

from tests.conftest import write_finished_run
from trifecta.analysis import snapshot
from trifecta.provenance import lineage
from trifecta.training.rundir import sha256_file


def snapshot_run(root):
    """A finished run whose run.json records one snapshot (in its store folder, by absolute path)."""
    metrics = write_finished_run(root, "mnist5k", "s", "tff", 0, {1: [0.4] * 6})
    run_dir = metrics.parent
    snap = run_dir / "store" / "abc" / "snapshot_epoch_0001.pt"
    snap.parent.mkdir(parents=True)
    snap.write_bytes(b"weights")
    record = {"identity_sha256": "abc", "snapshots": {"1": {"path": str(snap.resolve()), "sha256": sha256_file(snap)}},
              "git": {"commit": "c" * 40, "dirty": False}, "status": "complete"}
    (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def test_run_entry_hashes_every_file_and_snapshot(tmp_path):
    run_dir = snapshot_run(tmp_path)
    entry = lineage.run_entry(run_dir)
    assert set(entry["files"]) == set(lineage.RUN_FILES) and all(entry["files"].values())
    assert entry["snapshots"]["1"]["sha256"] == sha256_file(run_dir / "store/abc/snapshot_epoch_0001.pt")
    assert entry["provenance"]["git"]["commit"] == "c" * 40


def test_a_moved_results_folder_still_finds_its_snapshots(tmp_path):
    run_dir = snapshot_run(tmp_path / "old")
    moved = tmp_path / "new" / "run"
    shutil.copytree(run_dir, moved)
    shutil.rmtree(tmp_path / "old")  # the recorded absolute path is gone
    recorded = json.loads((moved / "run.json").read_text())["snapshots"]["1"]["path"]
    found = snapshot.resolve_snapshot(moved, recorded)
    assert found == moved / "store/abc/snapshot_epoch_0001.pt" and found.exists()
    assert lineage.run_entry(moved)["snapshots"]["1"]["sha256"] == sha256_file(found)


def test_fragments_join_and_every_output_is_hashed(tmp_path):
    run_dir = snapshot_run(tmp_path)
    output = tmp_path / "table1.csv"
    output.write_text("x\n")
    fragments = [{"artefacts": [{"kind": "table_cell", "id": "c1", "runs": ["mnist5k/s/tff/seed0"]}],
                  "runs": {"mnist5k/s/tff/seed0": str(run_dir)}, "outputs": [str(output)]},
                 {"artefacts": [{"kind": "figure", "id": "fig1", "runs": ["mnist5k/s/tff/seed0"]}], "runs": {},
                  "inputs": [str(output)]}]
    joined = lineage.build_lineage(fragments)
    assert [a["id"] for a in joined["artefacts"]] == ["c1", "fig1"]
    assert joined["files"] == {str(output): sha256_file(output)}
    assert list(joined["runs"]) == ["mnist5k/s/tff/seed0"]


def test_unknown_runs_and_missing_outputs_are_errors(tmp_path):
    with pytest.raises(ValueError, match="no fragment gives"):
        lineage.build_lineage([{"artefacts": [{"kind": "figure", "id": "fig1", "runs": ["a/b/c/seed0"]}], "runs": {}}])
    with pytest.raises(ValueError, match="does not exist"):
        lineage.build_lineage([{"artefacts": [], "runs": {}, "outputs": [str(tmp_path / "nope.png")]}])
