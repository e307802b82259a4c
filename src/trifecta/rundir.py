"""The files of a run directory and of a run's store folder: their names, their columns, and how to read them.
No torch, no pandas.

    run.json       the run's record: identity, provenance, status, epoch times, resumes, snapshots
    steps.csv      per step and layer: STEP_KEYS + the trainer's step metrics
    eval.csv       per evaluation epoch and layer: EVAL_COLUMNS
    ensemble.csv   per evaluation epoch: ENSEMBLE_COLUMNS
    metrics.json   written last, its presence means the run is complete: identity, identity_sha256, evals
"""

import json
from pathlib import Path

RECORD, SUMMARY = "run.json", "metrics.json"
STEPS, EVAL, ENSEMBLE = "steps.csv", "eval.csv", "ensemble.csv"
LOGS = (STEPS, EVAL, ENSEMBLE)
FILES = (SUMMARY, RECORD, EVAL, ENSEMBLE, STEPS)  # what lineage and audit hash
STEP_KEYS = ("epoch", "step", "layer")
EVAL_COLUMNS = ("epoch", "layer", "accuracy", "max_goodness", "max_abs_weight")
ENSEMBLE_COLUMNS = ("epoch", "last_k", "accuracy")


def read_json(path) -> dict:
    """A JSON file; a truncated or corrupt one is a ValueError that names it (a missing one: FileNotFoundError)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}): truncated or altered; rerun the job that wrote "
                         "it") from None
