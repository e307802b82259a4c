"""trifecta crate: the Provenance Run Crate of a small finished workflow passes roc-validator's REQUIRED checks,
names every run as an action with its data and settings, and a run without its run.json is named."""

import json
import shutil
from pathlib import Path

import pytest
from rocrate_validator import models, services

from tests.conftest import write_finished_run
from trifecta.analysis import collect, tables
from trifecta.provenance import crate, lineage
from trifecta.training.rundir import sha256_file

REPO = Path(__file__).resolve().parents[2]
DATA = {"cifar-10-batches-py/data_batch_1": "da" * 32}
SETTINGS = {"epochs": 100, "last_k": 3, "width": 1.0, "augment": True, "lr_schedule": [[0, 0.001]]}
GRID = [{"name": "cells", "datasets": ["cifar10"], "archs": ["s"], "algos": ["tff", "symba-bn"], "seeds": [0, 1],
         "settings": {"epochs": 100}}]

# The terms the crate may use, as its two contexts (https://w3id.org/ro/crate/1.1/context and
# https://w3id.org/ro/terms/workflow-run/context) define them: the validator cannot fetch those here (no
# network), so the test gives them inline. A term missing here fails the validator's compaction check.
SCHEMA, WFRUN = "http://schema.org/", "https://w3id.org/ro/terms/workflow-run#"
TERMS = {**{t: SCHEMA + t for t in (
    "about actionStatus additionalType datePublished description encodingFormat endTime error exampleOfWork hasPart "
    "identifier instrument license mainEntity mentions name object position programmingLanguage result "
    "softwareVersion startTime step url value valueRequired version workExample ComputerLanguage ControlAction "
    "CreateAction CreativeWork Dataset HowTo HowToStep OrganizeAction PropertyValue SoftwareApplication "
    "SoftwareSourceCode").split()},
    "File": SCHEMA + "MediaObject", "conformsTo": "http://purl.org/dc/terms/conformsTo",
    "ComputationalWorkflow": "https://bioschemas.org/ComputationalWorkflow",
    "FormalParameter": "https://bioschemas.org/FormalParameter",
    "input": "https://bioschemas.org/ComputationalWorkflow#input",
    "output": "https://bioschemas.org/ComputationalWorkflow#output",
    "sha256": WFRUN + "sha256", "environment": WFRUN + "environment"}


def write_run(algo: str, seed: int) -> str:
    """A finished run under results/train with its run.json and a snapshot in resources/store; its run id."""
    accs = {10: [0.3] * 6, 100: [0.5, 0.55, 0.6, 0.6, 0.6, 0.6 + 0.05 * seed]}
    metrics = write_finished_run("results", "cifar10", "s", algo, seed, accs, settings=SETTINGS, data=DATA)
    summary = json.loads(metrics.read_text())
    store = Path("resources/store") / summary["identity_sha256"]
    store.mkdir(parents=True)
    snapshot, listing = store / "snapshot_epoch_0100.pt", store / "environment.txt"
    snapshot.write_bytes(f"weights of {algo} {seed}".encode())
    listing.write_text("torch==2.4.1\n")
    record = {**summary["identity"], "identity_sha256": summary["identity_sha256"], "status": "complete",
              "git": {"commit": "c" * 40, "dirty": False}, "source_sha256": "5e" * 32,
              "versions": {"python": "3.11.7", "torch": "2.4.1", "cuda": None}, "device": {"type": "cpu", "name": "x"},
              "host": "node1", "slurm_job_id": "42", "started": "2025-01-01T10:00:00+00:00",
              "finished": "2025-01-01T11:00:00+00:00", "store": str(store),
              "snapshots": {"100": {"path": str(snapshot), "sha256": sha256_file(snapshot)}}}
    if seed == 0:  # the optional keys of newer run.json files
        record |= {"gpu": {"name": "NVIDIA H200", "count": 1},
                   "environment": {"file": str(listing), "sha256": sha256_file(listing)}}
    (metrics.parent / "run.json").write_text(json.dumps(record))
    return f"cifar10/s/{algo}/seed{seed}"


def write_fragment(path: str, kind: str, rid: str, files: list[str], snapshot: bool) -> str:
    """A figure's or probe's lineage fragment (as `trifecta figure` and `trifecta probe --merge` write them)."""
    for file in files:
        Path(file).parent.mkdir(parents=True, exist_ok=True)
        Path(file).write_text(f"{kind} of {rid}\n")
    record = json.loads(Path(f"results/train/{rid}/run.json").read_text())
    snapshots = [{"run": rid, "epoch": 100, "sha256": record["snapshots"]["100"]["sha256"]}] if snapshot else []
    artefact = {"kind": kind, "id": "fig3" if kind == "figure" else f"probe {rid} epoch 100", "runs": [rid],
                "files": files, "snapshots": snapshots}
    Path(path).write_text(json.dumps({"artefacts": [artefact], "runs": {rid: f"results/train/{rid}"},
                                      "outputs": files}))
    return path


@pytest.fixture
def results(tmp_path, monkeypatch) -> dict:
    """Four finished runs, Table 1 of them, a figure, a probe and the lineage, in a workflow folder; the lineage."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(REPO / "Snakefile", "Snakefile")
    rids = [write_run(algo, seed) for algo in ("tff", "symba-bn") for seed in (0, 1)]
    metrics = sorted(str(p) for p in Path("results/train").glob("*/*/*/seed*/metrics.json"))
    assert tables.main(["--metrics", *metrics, "--out-dir", "results/tables", "--table", "table1"]) == 0
    assert collect.main(["--runs", *metrics, "--out", "results/tables/runs.csv", "--layers-out",
                         "results/tables/layers.csv", "--lineage", "results/tables/runs.lineage.json"]) == 0
    fragments = ["results/tables/runs.lineage.json", "results/tables/table1.lineage.json",
                 write_fragment("results/fig3.lineage.json", "figure", rids[0], ["results/figures/fig3.png"], True),
                 write_fragment("results/probe.lineage.json", "probe", rids[1], [f"results/probe/{rids[1]}.csv"], True)]
    assert lineage.main([*fragments, "--out", "results/lineage.json", "--grid", json.dumps(GRID),
                         "--data-dir", "resources/data"]) == 0
    return json.loads(Path("results/lineage.json").read_text())


def make_crate() -> dict:
    assert crate.main(["results/lineage.json", "--out", "results/ro-crate-metadata.json"]) == 0
    return json.loads(Path("results/ro-crate-metadata.json").read_text())


def required_issues(doc: dict, results: Path) -> list[str]:
    """roc-validator's REQUIRED issues (provenance-run-crate) with the crate `doc` in the folder `results`, offline
    (its metadata file is rewritten with the contexts inline)."""
    assert doc["@context"] == ["https://w3id.org/ro/crate/1.1/context", crate.WFRUN_CONTEXT]
    results = Path(results).resolve()
    (results / "ro-crate-metadata.json").write_text(json.dumps({**doc, "@context": TERMS}))
    result = services.validate(models.ValidationSettings(
        rocrate_uri=str(results), profile_identifier="provenance-run-crate",
        requirement_severity=models.Severity.REQUIRED, offline=True, cache_path=results.parent / "http-cache"))
    return [f"{i.check.name}: {i.message} ({i.violatingEntity})" for i in result.get_issues(models.Severity.REQUIRED)]


def graph(doc: dict) -> dict:
    return {e["@id"]: e for e in doc["@graph"]}


def ids(value) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def test_the_crate_passes_the_provenance_run_crate_profile(results, tmp_path):
    assert required_issues(make_crate(), tmp_path / "results") == []


def test_the_validator_reports_a_missing_instrument(results, tmp_path):
    """The check above can fail: a training run without its tool breaks a MUST of the profile."""
    doc = make_crate()
    del graph(doc)["#train/cifar10/s/tff/seed1"]["instrument"]
    issues = required_issues(doc, tmp_path / "results")
    assert len(issues) == 1 and "Action instrument" in issues[0] and "#train/cifar10/s/tff/seed1" in issues[0]


def test_every_run_is_an_action_with_its_data_settings_and_files(results):
    g = graph(make_crate())
    for rid, entry in results["runs"].items():
        action = g[f"#train/{rid}"]
        record = json.loads(Path(entry["run_dir"], "run.json").read_text())
        assert action["@type"] == "CreateAction" and action["instrument"] == {"@id": "#trifecta-train"}
        assert (action["startTime"], action["endTime"]) == (record["started"], record["finished"])
        inputs = {g[i]["name"]: g[i] for i in ids(action["object"])}
        assert inputs["cifar-10-batches-py/data_batch_1"]["sha256"] == DATA["cifar-10-batches-py/data_batch_1"]
        settings = {name: e["value"] for name, e in inputs.items() if e["@type"] == "PropertyValue"}
        assert settings == {**{k: record[k] for k in crate.IDENTITY}, **record["settings"], "lr_schedule": "[[0, 0.001]]"}
        outputs = {i: g[i] for i in ids(action["result"])}
        for name in lineage.RUN_FILES:
            assert outputs[f"train/{rid}/{name}"]["sha256"] == entry["files"][name]
        assert outputs[f"../{entry['snapshots']['100']['path']}"]["sha256"] == entry["snapshots"]["100"]["sha256"]
        environment = {g[i]["name"]: g[i]["value"] for i in ids(action["environment"])}
        assert environment["versions.torch"] == "2.4.1" and environment["git.commit"] == "c" * 40
    assert set(ids(g["#control/train_model"]["object"])) == {f"#train/{rid}" for rid in results["runs"]}
    seed0 = g["#train/cifar10/s/tff/seed0"]
    assert {"name": "gpu.name", "value": "NVIDIA H200"}.items() <= g[f"{seed0['@id']}/environment/gpu.name"].items()
    assert any(i.endswith("environment.txt") for i in ids(seed0["result"]))


def test_tables_figures_probes_and_every_file_with_its_hash(results):
    g = graph(make_crate())
    table = g["#table/table1"]
    assert set(ids(table["result"])) == {f"tables/table1.{ext}" for ext in ("csv", "md", "tex", "html")}
    assert set(ids(table["object"])) == {f"train/{rid}/metrics.json" for rid in results["runs"]}
    assert ids(g["#figure/fig3"]["result"]) == ["figures/fig3.png"]
    assert ids(g["#collection/runs.csv"]["result"]) == ["tables/runs.csv", "tables/layers.csv"]
    assert set(ids(g["#collection/runs.csv"]["object"])) == {f"train/{rid}/metrics.json" for rid in results["runs"]}
    assert ids(g["#probe/cifar10/s/tff/seed1"]["result"]) == ["probe/cifar10/s/tff/seed1.csv"]
    files = [e for e in g.values() if "File" in e["@type"] and e["@id"] != "../Snakefile"]
    assert files and all(len(e["sha256"]) == 64 for e in files)
    assert g["../Snakefile"]["version"] == "c" * 40 and g["./"]["mainEntity"] == {"@id": "../Snakefile"}
    assert set(ids(g["#snakemake-run"]["object"])) == {f"#control/{rule}" for rule in crate.RULES}


def test_a_run_without_its_record_is_named(results):
    path = Path("results/train/cifar10/s/symba-bn/seed1/run.json")
    path.unlink()
    with pytest.raises(ValueError, match=f"run cifar10/s/symba-bn/seed1: {path} is missing"):
        crate.main(["results/lineage.json", "--out", "results/ro-crate-metadata.json"])
