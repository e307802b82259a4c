"""The audit's checks of what the analysis made from the runs (provenance/audit.py runs them): every table cell
recomputed from its runs' metrics.json, runs.csv and layers.csv collected again, and each snapshot a probe or
figure read being the one its run recorded."""

import math
from pathlib import Path

import pandas as pd

from trifecta.analysis.cells import mean_std
from trifecta.analysis.collect import collect
from trifecta.training.rundir import SUMMARY, read_json

TOLERANCE = 1e-6  # percentage points, far below the tables' two printed decimals


def close(a, b, tol: float = 1e-9) -> bool:
    """Two recorded values agree: within tol, or both missing (None or NaN)."""
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return (a is None or a != a) and (b is None or b != b)
    return abs(float(a) - float(b)) <= tol


def close_lists(a, b) -> bool:
    return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b))


def recompute_cell(cell: dict, runs: dict) -> tuple[float, float, int, list[str]]:
    """Mean, std and n of a cell from its runs' metrics.json files (percent)."""
    values, fails = [], []
    for rid in cell["runs"]:
        path = Path(runs[rid]["run_dir"]) / SUMMARY
        try:
            value = read_json(path)["evals"][str(cell["ours_epoch"])][cell["metric"]]
            values.append(100 * float(value))
        except (OSError, KeyError, TypeError, ValueError) as err:
            fails.append(f"{cell['id']}: {path}: cannot read {cell['metric']} at epoch {cell['ours_epoch']} ({err!r})")
    mean, std = mean_std(values)
    return mean, std, len(values), fails


def check_cells(cells: list[dict], runs: dict) -> list[str]:
    fails, tables = [], {}
    for cell in cells:
        if cell["file"] not in tables:
            tables[cell["file"]] = pd.read_csv(cell["file"], keep_default_na=False, na_values=[""])
        table = tables[cell["file"]]
        rows = table[(table["table"] == cell["table"]) & (table["row"] == cell["row"])
                     & (table["column"] == cell["column"]) & (table["epoch"] == cell["epoch"])]
        if len(rows) != 1:
            fails.append(f"{cell['id']}: {cell['file']}: cell not found")
            continue
        row = rows.iloc[0]
        mean, std, n, problems = recompute_cell(cell, runs)
        fails += problems
        written = (row["ours_mean"], row["ours_std"], int(row["n_seeds"]))
        if not (close(mean, written[0], TOLERANCE) and close(std, written[1], TOLERANCE) and n == written[2]):
            files = ", ".join(str(Path(runs[r]["run_dir"]) / SUMMARY) for r in cell["runs"]) or "no runs"
            fails.append(f"{cell['id']}: {cell['file']} says {written[0]:.4f} ± {written[1]:.4f} (n={written[2]}) "
                         f"but the runs' metrics give {mean:.4f} ± {std:.4f} (n={n}) [{files}]")
    return fails


def check_collection(artefact: dict, runs: dict) -> list[str]:
    """runs.csv and layers.csv are what collecting the runs' files gives now, byte for byte."""
    paths = [Path(runs[rid]["run_dir"]) / SUMMARY for rid in artefact["runs"]]
    try:
        frames = collect(paths)
    except (OSError, KeyError, ValueError) as err:
        return [f"{artefact['id']}: its runs cannot be collected again ({err!r})"]
    fails = []
    for frame, path in zip(frames, map(Path, artefact["files"])):
        if not path.exists() or frame.to_csv(index=False) != path.read_text():
            fails.append(f"{artefact['id']}: {path} is not what its {len(paths)} runs' metrics.json and eval.csv "
                         "give: collect them again (delete it and run `snakemake`)")
    return fails


def check_snapshot_use(artefact: dict, runs: dict) -> list[str]:
    """A probe result or weight figure names the snapshot it read; its hash must be the run's."""
    fails = []
    for use in artefact.get("snapshots", []):
        entry = runs[use["run"]]["snapshots"].get(str(use["epoch"]))
        if entry is None or entry["sha256"] != use["sha256"]:
            fails.append(f"{artefact['id']}: {runs[use['run']]['run_dir']}: used snapshot epoch {use['epoch']} "
                         f"with sha256 {use['sha256'][:12]}…, which the run does not record")
    return fails
