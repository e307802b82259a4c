"""Cells of Tables 1-3 from the collected runs: mean ± sample standard deviation over seeds, beside the paper.

Every cell is the mean ± sample standard deviation (ddof 1) over seeds of the test accuracy in percent at one
epoch, of the last layer (`acc_last`) or of the mean goodness of the last three layers (`acc_last3`, Table 3),
beside the paper's value as printed (paper_values.csv, transcribed once) and the difference ours − paper in
percentage points. A cell whose runs are missing says why (not configured, failed or unfinished, epoch not
evaluated); a cell computed from fewer seeds than configured is `partial` and names the missing seeds.
"""

import math
from pathlib import Path

import pandas as pd

from trifecta.planning.paper import KEY, PAPER_VALUES, QUOTED, layout, source
from trifecta.planning.runs import TRAIN_DIR, Run, run_id
from trifecta.training.rundir import RECORD, SUMMARY, read_json


def read_paper_values(path: Path = PAPER_VALUES) -> pd.DataFrame:
    """The transcription, numbers kept as printed (strings) so that '23.00' stays '23.00'."""
    paper = pd.read_csv(path, dtype=str, keep_default_na=False)
    paper["epoch"] = paper["epoch"].astype(int)
    return paper


def join_paper(cells: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Attach the paper's value to each cell; a transcribed cell without a matching cell is an error."""
    check = paper.merge(cells, on=KEY, how="left", suffixes=("", "_cell"), indicator=True)
    orphans = check[check["_merge"] == "left_only"]
    if len(orphans):
        raise ValueError(f"paper values without a table cell: {orphans[KEY].to_dict('records')}")
    for col in ["dataset", "arch", "algo", "metric"]:
        bad = check[check[col] != check[f"{col}_cell"]]
        if len(bad):
            raise ValueError(f"paper values disagree with the table layout in '{col}': {bad[KEY].to_dict('records')}")
    values = paper[KEY + ["mean", "std", "source", "note"]].rename(
        columns={"mean": "paper_mean", "std": "paper_std", "source": "paper_source", "note": "paper_note"})
    merged = cells.merge(values, on=KEY, how="left")
    for col in ["paper_mean", "paper_std", "paper_source", "paper_note"]:
        merged[col] = merged[col].fillna("")
    return merged


# ---- Cells from runs ----

def best_seed(runs: pd.DataFrame, dataset: str, arch: str, algo: str, epoch: int | None = None) -> tuple[pd.Series, int]:
    """The runs.csv row of the best seed: highest acc_last at `epoch` (default: the last); ties go to the lower seed."""
    rows = runs[(runs["dataset"] == dataset) & (runs["arch"] == arch) & (runs["algo"] == algo)]
    if rows.empty:
        raise ValueError(f"no runs of {dataset}/{arch}/{algo} in runs.csv")
    epoch = int(rows["epoch"].max()) if epoch is None else int(epoch)
    at = rows[rows["epoch"] == epoch]
    if at.empty:
        raise ValueError(f"no run of {dataset}/{arch}/{algo} was evaluated at epoch {epoch}")
    return at.sort_values(["acc_last", "seed"], ascending=[False, True]).iloc[0], epoch


def parse_configured(items) -> pd.DataFrame:
    """Run ids ('dataset/arch/algo/seedN') or run directories or their metrics.json paths -> a frame of runs."""
    rows = [vars(Run.parse(item)) for item in items]
    return pd.DataFrame(rows, columns=["dataset", "arch", "algo", "seed"])


def run_problem(train_dir: Path, dataset, arch, algo, seed) -> str:
    """Why a configured run has no row in runs.csv, from what its directory holds."""
    run_dir = Path(Run(dataset, arch, algo, int(seed)).dir(train_dir))
    if (run_dir / SUMMARY).exists():
        return "finished but not in runs.csv (rerun collect)"
    if (run_dir / RECORD).exists():
        record = read_json(run_dir / RECORD)
        done, total = len(record.get("epoch_wall_s", {})), record.get("settings", {}).get("epochs", "?")
        return f"failed or unfinished ({done} of {total} epochs, no metrics.json)"
    return "not run (no run directory)"


def metric_value(row: dict, metric: str) -> float | None:
    """Accuracy (fraction) of a runs.csv row for a metric; None where the row cannot give it."""
    if metric == "acc_last":
        value = row["acc_last"]
    else:
        value = row["acc_last_k"] if row["last_k"] == int(metric.removeprefix("acc_last")) else None
    return None if value is None or pd.isna(value) else float(value)


def index_runs(runs: pd.DataFrame) -> dict:
    """{(dataset, arch, algo): {seed: {epoch: runs.csv row}}}."""
    index = {}
    for row in runs.to_dict("records"):
        key = (row["dataset"], row["arch"], row["algo"])
        index.setdefault(key, {}).setdefault(int(row["seed"]), {})[int(row["epoch"])] = row
    return index


def compute_cell(cell: dict, runs: dict, configured: dict | None, stand_in: dict, train_dir: Path) -> dict:
    """One cell from `runs` (see index_runs) and the configured seeds per (dataset, arch, algo)."""
    dataset, arch, epoch = source(cell, stand_in)
    out = {"ours_dataset": dataset, "ours_arch": arch, "ours_epoch": epoch,
           "stand_in": "" if (dataset, arch, epoch) == (cell["dataset"], cell["arch"], cell["epoch"])
           else f"{dataset}/{arch}@{epoch}"}
    key = (dataset, arch, cell["algo"])
    match = runs.get(key, {})
    seeds = sorted(match if configured is None else configured.get(key, set()))
    values, problems, ids = [], [], []
    for seed in seeds:
        if seed not in match:
            problems.append(f"seed {seed}: {run_problem(train_dir, dataset, arch, cell['algo'], seed)}")
        elif epoch not in match[seed]:
            evaluated = ", ".join(map(str, sorted(match[seed])))
            problems.append(f"seed {seed}: epoch {epoch} not evaluated (evaluated: {evaluated})")
        elif (value := metric_value(match[seed][epoch], cell["metric"])) is None:
            problems.append(f"seed {seed}: no {cell['metric']} (runs.csv last_k = {match[seed][epoch]['last_k']})")
        else:
            values.append(100 * value)
            ids.append(run_id(dataset, arch, cell["algo"], seed))
    mean, std = mean_std(values)
    if not seeds:
        quoted = QUOTED.get(cell["row"]) if cell["table"] == "table2" else None
        status, reason = "missing", "not configured" + (f"; the paper quotes this row from {quoted}" if quoted else "")
    elif not values:
        status, reason = "missing", "; ".join(problems)
    elif problems:
        status, reason = "partial", f"{len(values)} of {len(seeds)} seeds; " + "; ".join(problems)
    else:
        status, reason = "ok", ""
    return {**out, "ours_mean": mean, "ours_std": std, "n_seeds": len(values), "n_configured": len(seeds),
            "status": status, "reason": reason, "runs": ";".join(ids)}


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for fewer than two values)."""
    if not values:
        return math.nan, math.nan
    s = pd.Series(values, dtype=float)
    return float(s.mean()), float(s.std()) if len(values) > 1 else math.nan


def build_tables(runs: pd.DataFrame, paper: pd.DataFrame, configured: pd.DataFrame | None = None,
                 stand_in: dict | None = None, train_dir: Path = Path(TRAIN_DIR),
                 tables: list[str] | None = None) -> pd.DataFrame:
    """One row per cell of Tables 1–3: ours, the paper's, the difference, status and reason."""
    stand_in = {t: {axis: {str(k): v for k, v in m.items()} for axis, m in s.items()}
                for t, s in (stand_in or {}).items()}
    cells = pd.DataFrame([c for c in layout() if tables is None or c["table"] in tables])
    by_run = index_runs(runs)
    by_configured = None
    if configured is not None:
        by_configured = {}
        for row in configured.itertuples(index=False):
            by_configured.setdefault((row.dataset, row.arch, row.algo), set()).add(int(row.seed))
    computed = pd.DataFrame([compute_cell(c, by_run, by_configured, stand_in, train_dir) for c in cells.to_dict("records")])
    table = join_paper(pd.concat([cells, computed], axis=1), paper[paper["table"].isin(cells["table"])])
    paper_mean = pd.to_numeric(table["paper_mean"], errors="coerce")
    table["diff"] = table["ours_mean"] - paper_mean
    table["quoted_from"] = table["row"].map(QUOTED).fillna("")
    return table


