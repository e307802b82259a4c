"""A run's files, one owner: their names and columns, how numbers are written into them, and how they are
written and read. No torch, no pandas: the workflow, `trifecta status` and the analysis read runs through here.

    run.json       the run's record: identity, provenance, status, epoch times, resumes, snapshots
    steps.csv      per step and layer: STEP_KEYS + the trainer's step metrics
    eval.csv       per evaluation epoch and layer: EVAL_COLUMNS
    ensemble.csv   per evaluation epoch: ENSEMBLE_COLUMNS
    metrics.json   written last, its presence means the run is complete: identity, identity_sha256, evals
An identity's store folder (runstate.py) holds them all, with its checkpoints; a run directory shows copies.
"""

import csv
import hashlib
import io
import json
import os
from pathlib import Path

RECORD, SUMMARY = "run.json", "metrics.json"
STEPS, EVAL, ENSEMBLE = "steps.csv", "eval.csv", "ensemble.csv"
LOGS = (STEPS, EVAL, ENSEMBLE)
FILES = (SUMMARY, RECORD, EVAL, ENSEMBLE, STEPS)  # what lineage and audit hash
INDEX = "index.json"  # an identity's checkpoints and snapshots with their sha256 (checkpoint.py)
OWN_STORE = "store"  # a run directory's own run store, where `trifecta train` is given no --store
STEP_KEYS = ("epoch", "step", "layer")
EVAL_COLUMNS = ("epoch", "layer", "accuracy", "max_goodness", "max_abs_weight")
ENSEMBLE_COLUMNS = ("epoch", "last_k", "accuracy")


# ---- Writing ----

def fmt(x: float) -> str:
    """A number as the logs hold it: 6 significant digits; NaN (a resting layer's gradient norm) an empty cell."""
    return "" if x != x else f"{x:.6g}"


def write_atomic(path: Path, write) -> None:
    """Call write(file_object) on a temporary sibling of `path`, fsync, then rename it onto `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk, a failed serialisation: no temporary file is left behind
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data) -> None:
    write_atomic(path, lambda f: f.write(json.dumps(data, indent=2, sort_keys=True).encode()))


def append_rows(path: Path, header, rows) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerows(rows)


def truncate_rows(path: Path, last_epoch: int) -> None:
    """Drop rows of epochs after `last_epoch` (written before a crash, after the last checkpoint)."""
    if path.exists():
        copy_rows(path, path, lambda epoch: epoch <= last_epoch)


def copy_rows(source: Path, dest: Path, keep) -> None:
    """Copy a log's header and the rows whose epoch (first column) keep(epoch) accepts."""
    with open(source, newline="") as f:
        rows = list(csv.reader(f))
    kept = [rows[0]] + [r for r in rows[1:] if keep(int(r[0]))]
    text = io.StringIO(newline="")
    csv.writer(text).writerows(kept)  # the same quoting and line endings as append_rows
    write_atomic(dest, lambda f: f.write(text.getvalue().encode()))


# ---- Reading ----

def read_json(path) -> dict:
    """A JSON file; a truncated or corrupt one is a ValueError that names it (a missing one: FileNotFoundError)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}): truncated or altered; rerun the job that wrote "
                         "it") from None


def read_rows(path) -> list[dict]:
    """A log's rows as {column: text}."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def summarize(folder: Path, identity: dict, identity_sha256: str) -> dict:
    """metrics.json: accuracies per evaluation epoch, read back from eval.csv and ensemble.csv."""
    evals = {}
    for row in read_rows(Path(folder) / EVAL):
        entry = evals.setdefault(row["epoch"], {"acc_layers": []})
        entry["acc_layers"].append(float(row["accuracy"]))
        entry["acc_last"] = float(row["accuracy"])
    for row in read_rows(Path(folder) / ENSEMBLE):
        evals[row["epoch"]][f"acc_last{row['last_k']}"] = float(row["accuracy"]) if row["accuracy"] else None
    return {"identity": identity, "identity_sha256": identity_sha256, "evals": evals}


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
