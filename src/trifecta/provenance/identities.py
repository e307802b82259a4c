"""The audit's check of run identities: every run's recorded identity against the one the grid (the config the
lineage names), this checkout's code and the data files give it now, and the seeds of each table cell against
each other (they differ in nothing but the seed). Each failure names the run or cell, the file, the key, the
recorded and the expected value.
"""

from pathlib import Path

from trifecta.identity.codehash import data_checksums, identity_differences
from trifecta.planning.grid import Grid, GridError
from trifecta.planning.runs import Run
from trifecta.training.rundir import SUMMARY, read_json


def identities(runs: dict) -> dict:
    """Each run's identity from its metrics.json (None where it cannot be read: check_run reports why)."""
    found = {}
    for rid, entry in runs.items():
        try:
            found[rid] = read_json(Path(entry["run_dir"]) / SUMMARY)["identity"]
        except (OSError, ValueError, KeyError, TypeError):
            found[rid] = None
    return found


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:38] + "…"


def check_grid(grid_spec: dict | None, runs: dict, recorded: dict) -> list[str]:
    """Every run against the identity the grid (grid_spec: {"runs", "data_dir"}) and this checkout name for it."""
    if not grid_spec:
        return ["lineage: it names no grid (made by `trifecta lineage` without --grid): runs cannot be checked "
                "against the config"]
    try:
        grid = Grid.from_config({"runs": grid_spec["runs"]})
    except (GridError, KeyError, TypeError) as err:
        return [f"lineage: its grid cannot be read: {err}"]
    checksums, fails = {}, []
    for rid, identity in recorded.items():
        run, path = Run.parse(rid), Path(runs[rid]["run_dir"]) / SUMMARY
        if run not in grid.runs:
            fails.append(f"run {rid}: {path}: not in the grid (the config's `runs`), so no setting of it is checked")
            continue
        if identity is None:
            continue
        if run.dataset not in checksums:
            try:
                checksums[run.dataset] = data_checksums(run.dataset, Path(grid_spec["data_dir"]))
            except (OSError, RuntimeError) as err:
                checksums[run.dataset] = None
                fails.append(f"data {run.dataset}: cannot be checksummed: {err}")
        device = (identity.get("recipe") or {}).get("device")  # the grid's precision, resolved where it ran
        expected = grid.expected_identity(run, device or "unrecorded")
        if checksums[run.dataset] is not None:
            expected["data"] = checksums[run.dataset]
        entry = grid.runs[run]["name"]
        for what, mine, wanted in identity_differences(identity, expected):
            source = {"training_code": "this checkout's training code"}.get(what, f"grid entry '{entry}'")
            if what.startswith("recipe."):
                source = f"grid entry '{entry}' (precision {grid.settings(run).precision} on {device})"
            if what.startswith("data."):
                source = f"the file in {grid_spec['data_dir']}"
            fails.append(f"run {rid}: {path}: {what} is {_short(mine)}, {source} gives {_short(wanted)}")
    for run in grid.runs:
        if run.id not in runs:
            fails.append(f"run {run.id}: in grid entry '{grid.runs[run]['name']}' but not in the lineage: its results "
                         "are not collected in runs.csv (run `snakemake`)")
    return fails


def check_cell_seeds(cells: list[dict], recorded: dict) -> list[str]:
    """The runs of a cell differ in nothing but the seed."""
    fails = []
    for cell in cells:
        ids = [rid for rid in cell["runs"] if recorded.get(rid) is not None]
        for rid in ids[1:]:
            first = recorded[ids[0]]
            for what, mine, theirs in identity_differences(recorded[rid], {**first, "seed": recorded[rid]["seed"]}):
                fails.append(f"{cell['id']}: runs {ids[0]} and {rid} differ in {what} ({_short(theirs)} vs "
                             f"{_short(mine)}): the seeds of a cell must share every setting but the seed")
    return fails
