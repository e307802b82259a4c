"""Audit the lineage end to end: `trifecta audit [results/lineage.json] [--out results/audit.txt]`.

Checks, each failure naming the artefact and the file:
1. every file hash in the lineage matches the file on disk (tables, figures, derived CSVs, and each run's
   metrics.json, run.json, eval.csv, ensemble.csv, steps.csv and snapshots; a snapshot also against the hash
   its run recorded in run.json);
2. every run is consistent: metrics.json's identity hashes to its identity_sha256, run.json agrees,
   metrics.json's accuracies are those of eval.csv and ensemble.csv, and eval.csv and steps.csv hold each
   (epoch, layer) and (step, layer) once;
3. every provenance record (run.json) is complete: commit, dirty flag, source and training-code hashes,
   versions, the environment (its hash and list), data checksums, start and finish times, status complete;
4. every table cell is recomputed from the per-run metrics.json files of its runs and matches the table
   file on disk (mean, std, number of seeds), and so are runs.csv and layers.csv (every run of the grid, those
   no table reads too); probe results and weight figures name a snapshot whose hash matches;
5. every run has the identity that the config (the grid in the lineage) and this checkout name for it: its
   settings, the hash of the code it can execute, its recipe (the grid's precision resolved on the device it
   ran on, which run.json names), and data checksums equal to the data files' now; a run outside the grid
   fails, and so does a run of the grid that the lineage lacks;
6. the seeds of a cell share every setting but the seed (and the training code and data).
Each failure names the run (or cell), the file, the key, the recorded and the expected value. Exit status 1
on any failure. A dirty working tree at training time is reported, not failed. The report lists the software
environments behind the results: each one's hash and list of installed distributions, and what it made.
"""

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from trifecta.analysis.snapshot import resolve_snapshot
from trifecta.identity.codehash import identity_differences, identity_sha256, record_identity
from trifecta.provenance.artefacts import check_cells, check_collection, check_snapshot_use, close, close_lists
from trifecta.provenance.identities import check_cell_seeds, check_grid, identities
from trifecta.training.rundir import (ENSEMBLE, EVAL, FILES as RUN_FILES, RECORD, STEPS, SUMMARY, read_json,
                                      sha256_file)

HEX40, HEX64 = re.compile(r"^[0-9a-f]{40}$"), re.compile(r"^[0-9a-f]{64}$")
VERSIONS = ("python", "torch", "torchvision", "numpy")  # must be set; cuda and cudnn must be present (None on CPU builds)


# ---- Files ----

def check_hash(path: Path, expected: str | None, what: str) -> list[str]:
    if expected is None:
        return [f"{what}: {path}: no hash recorded in the lineage (file was missing when it was written)"]
    if not path.exists():
        return [f"{what}: {path}: missing"]
    actual = sha256_file(path)
    return [] if actual == expected else [f"{what}: {path}: sha256 {actual[:12]}… != lineage {expected[:12]}…"]


# ---- Runs ----

def missing_provenance(record: dict) -> list[str]:
    """Names of the provenance fields that are absent or malformed in a run.json."""
    missing = []
    git = record.get("git") or {}
    if not HEX40.match(str(git.get("commit"))):
        missing.append("git.commit")
    if not isinstance(git.get("dirty"), bool):
        missing.append("git.dirty")
    for key in ("source_sha256", "training_code"):
        if not HEX64.match(str(record.get(key))):
            missing.append(key)
    versions = record.get("versions") or {}
    missing += [f"versions.{k}" for k in VERSIONS if not versions.get(k)]
    missing += [f"versions.{k}" for k in ("cuda", "cudnn") if k not in versions]
    environment = record.get("environment") or {}
    if not HEX64.match(str(environment.get("sha256"))) or not environment.get("file"):
        missing.append("environment")
    data = record.get("data") or {}
    if not data or not all(HEX64.match(str(v)) for v in data.values()):
        missing.append("data")
    missing += [k for k in ("started", "finished", "identity_sha256", "settings") if not record.get(k)]
    if record.get("status") != "complete":
        missing.append(f"status (is {record.get('status')!r}, not 'complete')")
    return missing


def check_run(run_id: str, entry: dict) -> tuple[list[str], list[str]]:
    """Failures and warnings for one run."""
    run_dir, fails, warns = Path(entry["run_dir"]), [], []
    for name in RUN_FILES:
        fails += check_hash(run_dir / name, entry["files"].get(name), f"run {run_id}")
    if not (run_dir / RECORD).exists() or not (run_dir / SUMMARY).exists():
        return fails, warns
    try:
        record, metrics = read_json(run_dir / RECORD), read_json(run_dir / SUMMARY)
    except ValueError as err:
        return fails + [f"run {run_id}: {err}"], warns
    for epoch, snap in entry["snapshots"].items():
        path = resolve_snapshot(run_dir, snap["path"])
        fails += check_hash(path, snap["sha256"], f"run {run_id} snapshot epoch {epoch}")
        recorded = record.get("snapshots", {}).get(epoch, {}).get("sha256")
        if snap["sha256"] is not None and recorded != snap["sha256"]:
            fails.append(f"run {run_id}: {run_dir / RECORD}: snapshot epoch {epoch} recorded as "
                         f"{str(recorded)[:12]}… but the lineage has {snap['sha256'][:12]}…")
    listing = Path(str((record.get("environment") or {}).get("file")))
    if listing.is_file() and sha256_file(listing) != record["environment"]["sha256"]:
        fails.append(f"run {run_id}: {listing}: the environment's list does not hash to run.json's environment.sha256")
    missing = missing_provenance(record)
    if missing:
        fails.append(f"run {run_id}: {run_dir / RECORD}: incomplete provenance: {', '.join(missing)}")
    if (record.get("git") or {}).get("dirty"):
        warns.append(f"run {run_id}: trained from a dirty working tree (commit {record['git'].get('commit')})")
    if identity_sha256(metrics.get("identity")) != metrics.get("identity_sha256"):
        fails.append(f"run {run_id}: {run_dir / SUMMARY}: identity does not hash to its identity_sha256")
    if record.get("identity_sha256") != metrics.get("identity_sha256"):
        fails.append(f"run {run_id}: {run_dir / RECORD}: identity_sha256 differs from metrics.json's")
    if record_identity(record) != metrics.get("identity"):
        different = [k for k, _, _ in identity_differences(record_identity(record), metrics.get("identity") or {})]
        fails.append(f"run {run_id}: {run_dir / RECORD}: its identity differs from metrics.json's in "
                     f"{', '.join(different) or 'its keys'}")
    device = (record.get("device") or {}).get("type")
    if ((metrics.get("identity") or {}).get("recipe") or {}).get("device") != device:
        fails.append(f"run {run_id}: {run_dir / SUMMARY}: the identity's recipe is not for the device it ran on "
                     f"({device})")
    fails += check_metrics_against_logs(run_id, run_dir, metrics)
    return fails, warns


def check_metrics_against_logs(run_id: str, run_dir: Path, metrics: dict) -> list[str]:
    """metrics.json is a summary of eval.csv and ensemble.csv: the two must agree."""
    fails = []
    try:
        evals = pd.read_csv(run_dir / EVAL)
        ensemble = pd.read_csv(run_dir / ENSEMBLE)
        steps = pd.read_csv(run_dir / STEPS, usecols=["step", "layer"])
    except (OSError, ValueError) as err:  # pandas' parser errors are ValueErrors
        return [f"run {run_id}: {run_dir}: cannot read eval.csv / ensemble.csv / steps.csv ({err})"]
    for name, frame, key in [(EVAL, evals, ["epoch", "layer"]), (ENSEMBLE, ensemble, ["epoch"]),
                             (STEPS, steps, ["step", "layer"])]:
        repeated = frame[frame.duplicated(key, keep="first")]
        if len(repeated):
            first = ", ".join(f"{k} {v}" for k, v in zip(key, repeated.iloc[0][key]))
            fails.append(f"run {run_id}: {run_dir / name}: {len(repeated)} rows repeat an earlier ({', '.join(key)}), "
                         f"first at {first}")
    for epoch, entry in metrics.get("evals", {}).items():
        layers = evals[evals["epoch"] == int(epoch)].sort_values("layer")["accuracy"].tolist()
        if not close_lists(layers, entry.get("acc_layers", [])):
            fails.append(f"run {run_id}: {run_dir / SUMMARY}: epoch {epoch} layer accuracies differ from eval.csv")
        if layers and not close(layers[-1], entry.get("acc_last")):
            fails.append(f"run {run_id}: {run_dir / SUMMARY}: epoch {epoch} acc_last differs from eval.csv")
        for row in ensemble[ensemble["epoch"] == int(epoch)].itertuples():
            if not close(row.accuracy, entry.get(f"acc_last{row.last_k}")):
                fails.append(f"run {run_id}: {run_dir / SUMMARY}: epoch {epoch} acc_last{row.last_k} "
                             "differs from ensemble.csv")
    return fails


def environments(lineage: dict) -> list[str]:
    """One line per environment behind the results: its hash, size, Python, torch and device, and what it made
    (tables, probes and figures, and how many runs)."""
    made, runs_of = {}, {}
    for rid, entry in lineage["runs"].items():
        sha = ((entry["provenance"].get("environment") or {}).get("sha256") or "unrecorded")[:16]
        runs_of.setdefault(sha, []).append(rid)
    env_of = {rid: sha for sha, rids in runs_of.items() for rid in rids}
    for artefact in lineage["artefacts"]:
        name = Path(artefact["file"]).stem if artefact["kind"] == "table_cell" else artefact["id"].split(" epoch")[0]
        for rid in artefact.get("runs", []):
            made.setdefault(env_of.get(rid, "unrecorded"), set()).add(name)
    lines = []
    for sha, rids in sorted(runs_of.items()):
        provenance = lineage["runs"][rids[0]]["provenance"]
        versions, environment = provenance.get("versions") or {}, provenance.get("environment") or {}
        device = (provenance.get("gpu") or {}).get("name") or (provenance.get("device") or {}).get("name")
        lines.append(f"environment {sha} ({environment.get('distributions', '?')} distributions, python "
                     f"{versions.get('python')}, torch {versions.get('torch')}, {device}; {environment.get('file')}): "
                     f"{len(rids)} runs, behind {', '.join(sorted(made.get(sha, ()))) or 'nothing'}")
    return lines


def audit(lineage: dict) -> tuple[list[str], list[str], dict]:
    fails, warns = [], []
    for path, sha in lineage["files"].items():
        fails += check_hash(Path(path), sha, "output")
    used_by = {}  # the tables, probes and figures that rest on a run (runs.csv holds every run)
    for artefact in (a for a in lineage["artefacts"] if a["kind"] != "collection"):
        for rid in artefact.get("runs", []):
            used_by.setdefault(rid, []).append(artefact["id"])
    for rid, entry in lineage["runs"].items():
        f, w = check_run(rid, entry)
        users = used_by.get(rid, [])
        note = f" [used by {', '.join(users[:3])}{f' and {len(users) - 3} more' if len(users) > 3 else ''}]" if users else ""
        fails, warns = fails + [x + note for x in f], warns + w
    cells = [a for a in lineage["artefacts"] if a["kind"] == "table_cell"]
    fails += check_cells(cells, lineage["runs"])
    for artefact in (a for a in lineage["artefacts"] if a["kind"] == "collection"):
        fails += check_collection(artefact, lineage["runs"])
    recorded = identities(lineage["runs"])
    fails += check_grid(lineage.get("grid"), lineage["runs"], recorded)
    fails += check_cell_seeds(cells, recorded)
    for artefact in lineage["artefacts"]:
        fails += check_snapshot_use(artefact, lineage["runs"])
    counts = {"runs": len(lineage["runs"]), "files": len(lineage["files"]), "table cells": len(cells),
              "other artefacts": len(lineage["artefacts"]) - len(cells)}
    return fails, warns, counts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta audit", description=__doc__.split("\n\n")[0])
    p.add_argument("lineage", type=Path, nargs="?", default=Path("results/lineage.json"),
                   help="the lineage from `trifecta lineage` (default: results/lineage.json)")
    p.add_argument("--out", type=Path, help="the audit report: written when the audit passes (left alone when it says "
                                            "the same), removed when it fails, so it never says PASSED of results "
                                            "that fail")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    lineage = read_json(args.lineage)
    fails, warns, counts = audit(lineage)
    lines = [f"audit of {args.lineage}: " + ", ".join(f"{v} {k}" for k, v in counts.items()), *environments(lineage)]
    lines += [f"WARNING {w}" for w in warns] + [f"FAIL {f}" for f in fails]
    lines.append(f"{'FAILED' if fails else 'PASSED'}: {len(fails)} failures, {len(warns)} warnings")
    if any(f.startswith("run ") and (": sha256 " in f or f.endswith(": missing")) for f in fails):
        lines.append("A run directory whose files are not those the lineage names (altered, swapped, lost): delete "
                     "it and run the same `snakemake` command: it is shown again from the run store.")
    print("\n".join(lines), file=sys.stderr if fails else sys.stdout)
    if args.out and fails:
        args.out.unlink(missing_ok=True)
    if fails:
        return 1
    if args.out:
        text = "\n".join(lines) + "\n"
        if not args.out.exists() or args.out.read_text() != text:  # the same report keeps its date
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text)
    return 0
