"""Lineage: every table cell, probe result and figure -> the runs it came from, with file hashes.

    trifecta lineage --out results/lineage.json --grid "$(runs of the config as JSON)" --data-dir resources/data \
        results/tables/table1.lineage.json results/figures/*.lineage.json ...

Each producer (`trifecta tables`, `trifecta probe --merge`, `trifecta figure`) writes a fragment:
{"artefacts": [{"kind", "id", "runs": [run ids], ...}], "runs": {run id: run dir}, "outputs": [files],
"inputs": [files]}. This command joins them and adds, for every run, the sha256 of its metrics.json,
run.json, eval.csv, ensemble.csv, steps.csv and snapshots and a summary of its provenance record (run.json),
and the sha256 of every output and derived input file, and the grid the config asks for (its `runs` and the data
directory), against which `trifecta audit` checks every run. `trifecta audit` verifies the result.
"""

import argparse
import json
from pathlib import Path

from trifecta.analysis.snapshot import resolve_snapshot
from trifecta.identity.commands import command_code
from trifecta.training.rundir import FILES as RUN_FILES, RECORD, read_json, sha256_file

# run.json fields copied into the lineage (the rest: config, identity, per-epoch times)
PROVENANCE = ("git", "source_sha256", "training_code", "versions", "environment", "data", "device",
              "gpu", "gpu_slots", "host", "slurm_job_id", "determinism", "started", "finished", "status", "resumes")


def run_entry(run_dir: Path) -> dict:
    """Hashes of a run's files and snapshots, and the provenance it recorded."""
    run_dir = Path(run_dir)
    files = {name: sha256_file(run_dir / name) if (run_dir / name).exists() else None for name in RUN_FILES}
    record = read_json(run_dir / RECORD) if (run_dir / RECORD).exists() else {}
    snapshots = {}
    for epoch, snap in record.get("snapshots", {}).items():
        path = resolve_snapshot(run_dir, snap["path"])
        snapshots[epoch] = {"path": str(path), "sha256": sha256_file(path) if path.exists() else None}
    return {"run_dir": str(run_dir), "identity_sha256": record.get("identity_sha256"), "files": files,
            "snapshots": snapshots, "provenance": {k: record.get(k) for k in PROVENANCE}}


def build_lineage(fragments: list[dict], grid: dict | None = None) -> dict:
    """The joined fragments with every run's and file's hashes; `grid`: {"runs": the config's grid entries,
    "data_dir": the dataset root}, what the audit checks the runs against."""
    runs, artefacts, paths = {}, [], []
    for fragment in fragments:
        runs.update(fragment.get("runs", {}))
        artefacts += fragment.get("artefacts", [])
        paths += fragment.get("outputs", []) + fragment.get("inputs", [])
    unknown = sorted({r for a in artefacts for r in a.get("runs", [])} - set(runs))
    if unknown:
        raise ValueError(f"artefacts name runs whose directories no fragment gives: {unknown}")
    files = {}
    for path in dict.fromkeys(paths):
        if not Path(path).exists():
            raise ValueError(f"{path} is listed by a lineage fragment but does not exist")
        files[path] = sha256_file(Path(path))
    return {"analysis_code_sha256": command_code("tables"),
            "figures_code_sha256": command_code("figure"),
            "runs": {rid: run_entry(Path(d)) for rid, d in sorted(runs.items())},
            "artefacts": artefacts, "files": files, "grid": grid}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta lineage", description=__doc__.split("\n\n")[0])
    p.add_argument("fragments", nargs="+", type=Path, help="*.lineage.json written by tables, probe, figure")
    p.add_argument("--out", type=Path, required=True, help="lineage file (JSON)")
    p.add_argument("--grid", required=True, help="the config's `runs` (grid entries) as JSON: what the audit checks "
                                                 "every run's settings against")
    p.add_argument("--data-dir", type=Path, required=True, help="dataset root (the audit checks the data checksums)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    grid = {"runs": json.loads(args.grid), "data_dir": str(args.data_dir)}
    lineage = build_lineage([read_json(p) for p in args.fragments], grid)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(lineage, indent=1, sort_keys=True))
    print(f"lineage: {len(lineage['artefacts'])} artefacts, {len(lineage['runs'])} runs, "
          f"{len(lineage['files'])} files -> {args.out}")
    return 0
