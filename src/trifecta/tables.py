"""Tables 1–3 of the paper from the collected runs, beside the paper's values: `trifecta tables ...`.

    trifecta tables --runs results/tables/runs.csv --out-dir results/tables \
        [--configured mnist5k/s/tff/0 ...] [--stand-in '{"table2": {"dataset": {"mnist": "mnist5k"}}}']

Every cell is the mean ± sample standard deviation (ddof 1) over seeds of the test accuracy in percent at one
epoch, of the last layer (`acc_last`) or of the mean goodness of the last three layers (`acc_last3`, Table 3).
Beside it: the paper's value as printed (src/trifecta/paper_values.csv, transcribed once from the paper)
and the difference ours − paper in percentage points. A cell whose runs are missing says why (not
configured, failed or unfinished, epoch not evaluated); a cell computed from fewer seeds than configured is
marked `partial` and names the missing seeds.

Stand-ins: a small grid (e.g. the embedded mnist5k runs) can fill the paper's cells in place of the
paper's own runs. `--stand-in` maps, per table, the paper's datasets to ours and, for those cells only, the
paper's architectures and epochs to ours; every cell filled that way names its stand-in, so a number is
never mistaken for the paper's setting.

Writes tableN.csv (one row per cell: ours, paper, difference, status, reason, runs), tableN.md,
tableN.tex, tableN.html, and tables.lineage.json (every cell -> its runs, for `trifecta lineage`).
"""

import argparse
import html
import json
import math
from pathlib import Path

import pandas as pd

from trifecta.registry import DATASETS, run_id

PAPER_VALUES = Path(__file__).with_name("paper_values.csv")
COLUMNS = {d.name: d.paper_column for d in DATASETS.values() if d.paper_column}  # dataset -> the paper's column
QUOTED = {"VFF/t": "Hinton (2022)", "PEP/t": "Dellaferrera & Kreiman (2022)"}
MARKS = {"Hinton (2022)": "†", "Dellaferrera & Kreiman (2022)": "‡"}
CAPTIONS = {
    "table1": "Table 1: test accuracy (%) of the ablation, shallow CNN, CIFAR-10, 100 epochs, last layer.",
    "table2": "Table 2: test accuracy (%) of the last layer per algorithm, dataset and epoch.",
    "table3": "Table 3: test accuracy (%) of TFF/d at 500 epochs: last layer vs mean goodness of the last three layers.",
}


# ---- Layout: every cell the workflow produces ----

def layout() -> list[dict]:
    """The cells of Tables 1–3 in the paper's order, each with what it is computed from."""
    cells = []
    losses = [("FTL (tau=2)", "ftl2"), ("FTL (tau=10)", "ftl10"), ("SymBa (alpha=4)", "symba")]
    presets = {"ftl2-ln": "vff", "symba-bn-olu": "tff"}
    for row, suffix in [("None", "ln"), ("BN", "bn"), ("OLU", "ln-olu"), ("OLU+BN", "bn-olu")]:
        for column, loss in losses:
            algo = presets.get(f"{loss}-{suffix}", f"{loss}-{suffix}")
            cells.append(_cell("table1", row, column, "cifar10", "s", algo, 100, "acc_last"))
    rows2 = [("FA/f", "fa", 100), ("PEP/t", "pep", 100), ("VFF/t", "vff", 60), ("VFF/t", "vff", 500),
             ("TFF/s", "tff", 10), ("TFF/s", "tff", 100), ("TFF/s", "tff", 200), ("TFF/d", "tff", 100),
             ("TFF/d", "tff", 200), ("TFF/d", "tff", 500), ("BP/d", "bp", 100)]
    for row, algo, epoch in rows2:
        for dataset, column in COLUMNS.items():
            cells.append(_cell("table2", row, column, dataset, row.split("/")[1], algo, epoch, "acc_last"))
    for row, metric in [("only last layer", "acc_last"), ("three last layers", "acc_last3")]:
        for dataset in ["mnist", "fmnist", "svhn", "cifar10"]:
            cells.append(_cell("table3", row, COLUMNS[dataset], dataset, "d", "tff", 500, metric))
    return cells


def _cell(table, row, column, dataset, arch, algo, epoch, metric) -> dict:
    return {"table": table, "row": row, "column": column, "dataset": dataset, "arch": arch, "algo": algo,
            "epoch": epoch, "metric": metric}


KEY = ["table", "row", "column", "epoch"]


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
    """'dataset/arch/algo/seed' strings (or metrics.json paths under results/train) -> a frame of runs."""
    rows = []
    for item in items:
        parts = Path(item).parts
        if parts[-1] == "metrics.json":
            parts = parts[-5:-1]
        dataset, arch, algo, seed = parts[-4:]
        rows.append({"dataset": dataset, "arch": arch, "algo": algo, "seed": int(str(seed).removeprefix("seed"))})
    return pd.DataFrame(rows, columns=["dataset", "arch", "algo", "seed"])


def run_problem(train_dir: Path, dataset, arch, algo, seed) -> str:
    """Why a configured run has no row in runs.csv, from what its directory holds."""
    run_dir = Path(train_dir) / dataset / arch / algo / f"seed{seed}"
    if (run_dir / "metrics.json").exists():
        return "finished but not in runs.csv (rerun collect)"
    if (run_dir / "run.json").exists():
        record = json.loads((run_dir / "run.json").read_text())
        done, total = len(record.get("epoch_wall_s", {})), record.get("config", {}).get("epochs", "?")
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
    sub = stand_in.get(cell["table"], {})
    dataset, arch, epoch = cell["dataset"], cell["arch"], cell["epoch"]
    if dataset in sub.get("dataset", {}):  # arch and epoch maps apply only where a dataset stands in
        dataset = sub["dataset"][dataset]
        arch = sub.get("arch", {}).get(arch, arch)
        epoch = int(sub.get("epoch", {}).get(str(epoch), epoch))
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
    mean, std = summarize(values)
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


def summarize(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; NaN for fewer than two values)."""
    if not values:
        return math.nan, math.nan
    s = pd.Series(values, dtype=float)
    return float(s.mean()), float(s.std()) if len(values) > 1 else math.nan


def build_tables(runs: pd.DataFrame, paper: pd.DataFrame, configured: pd.DataFrame | None = None,
                 stand_in: dict | None = None, train_dir: Path = Path("results/train")) -> pd.DataFrame:
    """One row per cell of Tables 1–3: ours, the paper's, the difference, status and reason."""
    stand_in = {t: {axis: {str(k): v for k, v in m.items()} for axis, m in s.items()}
                for t, s in (stand_in or {}).items()}
    cells = pd.DataFrame(layout())
    by_run = index_runs(runs)
    by_configured = None
    if configured is not None:
        by_configured = {}
        for row in configured.itertuples(index=False):
            by_configured.setdefault((row.dataset, row.arch, row.algo), set()).add(int(row.seed))
    computed = pd.DataFrame([compute_cell(c, by_run, by_configured, stand_in, train_dir) for c in layout()])
    table = join_paper(pd.concat([cells, computed], axis=1), paper)
    paper_mean = pd.to_numeric(table["paper_mean"], errors="coerce")
    table["diff"] = table["ours_mean"] - paper_mean
    table["quoted_from"] = table["row"].map(QUOTED).fillna("")
    return table


# ---- Rendering ----

def fmt(mean, std) -> str:
    if pd.isna(mean):
        return "—"
    return f"{mean:.2f}" if pd.isna(std) else f"{mean:.2f} ± {std:.2f}"


def paper_text(row) -> str:
    if not row["paper_mean"]:
        return "—"
    text = row["paper_mean"] + (f" ± {row['paper_std']}" if row["paper_std"] else "")
    return text + MARKS.get(row["paper_source"], "")


def cell_parts(row, notes: list[str]) -> tuple[str, str, str]:
    """(ours, paper, difference) texts; reasons and stand-ins become numbered notes."""
    ours = fmt(row["ours_mean"], row["ours_std"])
    if row["status"] == "partial":
        ours += f" (n={row['n_seeds']}/{row['n_configured']})"
    for note in [row["reason"], f"stand-in: ours from {row['stand_in']}" if row["stand_in"] else ""]:
        if note:
            if note not in notes:
                notes.append(note)
            ours += f" [{notes.index(note) + 1}]"
    diff = "" if pd.isna(row["diff"]) else f"Δ {row['diff']:+.2f}"
    return ours, paper_text(row), diff


def grid(table: pd.DataFrame, sep: str) -> tuple[pd.DataFrame, list[str]]:
    """The paper's layout: one text per cell joining ours, paper and difference with `sep`."""
    notes, records = [], {}
    for _, row in table.iterrows():
        ours, paper, diff = cell_parts(row, notes)
        text = sep.join(p for p in [f"ours {ours}", f"paper {paper}", diff] if p)
        key = (row["row"], row["epoch"]) if row["table"] == "table2" else (row["row"],)
        records.setdefault(key, {})[row["column"]] = text
    index = pd.MultiIndex.from_tuples(records, names=["model", "epochs"]) if len(next(iter(records))) == 2 \
        else pd.Index([k[0] for k in records], name="")
    return pd.DataFrame(list(records.values()), index=index), notes


def legend(table: pd.DataFrame) -> list[str]:
    lines = ["Cells: ours (mean ± sample std over seeds), the paper's value, Δ = ours − paper (percentage points)."]
    for source, mark in MARKS.items():
        if (table["paper_source"] == source).any():
            lines.append(f"{mark} quoted by the paper from {source}, not from its own runs.")
    return lines


def to_markdown(table: pd.DataFrame) -> str:
    frame, notes = grid(table, "<br>")
    head = list(frame.index.names) if frame.index.nlevels == 2 else [""]
    lines = [f"**{CAPTIONS[table['table'].iloc[0]]}**", "", "| " + " | ".join(head + list(frame.columns)) + " |",
             "|" + "---|" * (len(head) + len(frame.columns))]
    for key, values in frame.iterrows():
        key = list(key) if isinstance(key, tuple) else [key]
        lines.append("| " + " | ".join([str(k) for k in key] + [v if isinstance(v, str) else "" for v in values]) + " |")
    lines += [""] + legend(table) + [""] + [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
    return "\n".join(lines).replace("tau=", "τ=").replace("alpha=", "α=") + "\n"


def to_html(table: pd.DataFrame) -> str:
    frame, notes = grid(table, "<br>")
    body = frame.to_html(escape=False, na_rep="", border=1)
    foot = "".join(f"<p>{html.escape(line)}</p>" for line in legend(table) + [f"[{i}] {n}" for i, n in enumerate(notes, 1)])
    page = (f'<html><head><meta charset="utf-8"></head><body><h3>{CAPTIONS[table["table"].iloc[0]]}</h3>'
            f"{body}{foot}</body></html>\n")
    return page.replace("tau=", "τ=").replace("alpha=", "α=")


def latex_escape(text: str) -> str:
    for a, b in [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("±", r"$\pm$"), ("Δ", r"$\Delta$"), ("—", "--"), ("†", r"$^\dagger$"), ("‡", r"$^\ddagger$"),
                 ("−", "-"), ("τ", r"$\tau$"), ("α", r"$\alpha$")]:
        text = text.replace(a, b)
    return text


def latex_stack(text: str) -> str:
    """Lines of a cell stacked inside one tabular cell."""
    return r"\begin{tabular}[c]{@{}c@{}}" + r" \\ ".join(map(latex_escape, text.split("\n"))) + r"\end{tabular}"


def to_latex(table: pd.DataFrame) -> str:
    frame, notes = grid(table, "\n")
    head = list(frame.index.names) if frame.index.nlevels == 2 else [""]
    lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize",
             r"\caption{" + latex_escape(CAPTIONS[table["table"].iloc[0]]) + "}",
             r"\begin{tabular}{" + "l" * len(head) + "c" * len(frame.columns) + "}", r"\toprule",
             " & ".join(latex_escape(h) for h in head + list(frame.columns)) + r" \\", r"\midrule"]
    for key, values in frame.iterrows():
        key = list(key) if isinstance(key, tuple) else [key]
        lines.append(" & ".join([latex_escape(str(k)) for k in key]
                                + [latex_stack(v) if isinstance(v, str) else "" for v in values]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip"]
    lines += [latex_escape(s) + r"\\" for s in legend(table) + [f"[{i}] {n}" for i, n in enumerate(notes, 1)]]
    lines += [r"\end{table}"]
    return "\n".join(lines).replace("tau=", r"$\tau$=").replace("alpha=", r"$\alpha$=") + "\n"


# ---- Command line ----

CSV_COLUMNS = ["table", "row", "column", "epoch", "dataset", "arch", "algo", "metric", "ours_mean", "ours_std",
               "n_seeds", "n_configured", "paper_mean", "paper_std", "diff", "status", "reason", "stand_in",
               "ours_dataset", "ours_arch", "ours_epoch", "paper_source", "quoted_from", "paper_note", "runs"]


def lineage_fragment(table: pd.DataFrame, runs: pd.DataFrame, out_dir: Path, inputs: list[Path]) -> dict:
    """Every cell -> its runs, and every collected run -> its directory, for `trifecta lineage`."""
    artefacts = []
    for _, r in table.iterrows():
        artefacts.append({
            "kind": "table_cell", "id": f"{r['table']} [{r['row']} @ {r['epoch']} | {r['column']}]",
            "file": str(out_dir / f"{r['table']}.csv"), "table": r["table"], "row": r["row"],
            "column": r["column"], "epoch": int(r["epoch"]), "metric": r["metric"],
            "ours_epoch": int(r["ours_epoch"]), "status": r["status"],
            "runs": [x for x in r["runs"].split(";") if x],
            "value": {"mean": None if pd.isna(r["ours_mean"]) else r["ours_mean"],
                      "std": None if pd.isna(r["ours_std"]) else r["ours_std"], "n": int(r["n_seeds"])}})
    run_dirs = {run_id(r.dataset, r.arch, r.algo, r.seed): str(r.run_dir)
                for r in runs.drop_duplicates(["dataset", "arch", "algo", "seed"]).itertuples()}
    return {"artefacts": artefacts, "runs": run_dirs, "inputs": [str(p) for p in inputs],
            "outputs": [str(out_dir / f"{t}.{ext}") for t in CAPTIONS for ext in ("csv", "md", "tex", "html")]}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta tables", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="runs.csv from `trifecta collect`")
    p.add_argument("--paper-values", type=Path, default=PAPER_VALUES, help="the paper's values (CSV)")
    p.add_argument("--configured", nargs="*", default=None, metavar="RUN",
                   help="configured runs as dataset/arch/algo/seed or their metrics.json paths "
                        "(default: the runs in runs.csv)")
    p.add_argument("--stand-in", default="{}", help='JSON: {"table2": {"dataset": {"mnist": "mnist5k"}, '
                                                    '"arch": {"d": "s"}, "epoch": {"100": 4}}}')
    p.add_argument("--train-dir", type=Path, default=Path("results/train"), help="where run directories live")
    p.add_argument("--out-dir", type=Path, required=True)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    runs = pd.read_csv(args.runs)
    configured = None if args.configured is None else parse_configured(args.configured)
    if configured is not None:  # runs left over from an earlier configuration do not count
        keep = runs.merge(configured, on=["dataset", "arch", "algo", "seed"])
        runs = keep[runs.columns]
    table = build_tables(runs, read_paper_values(args.paper_values), configured, json.loads(args.stand_in),
                         args.train_dir)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name, part in table.groupby("table", sort=True):
        part = part.reset_index(drop=True)
        part[CSV_COLUMNS].to_csv(args.out_dir / f"{name}.csv", index=False, float_format="%.10g")
        (args.out_dir / f"{name}.md").write_text(to_markdown(part))
        (args.out_dir / f"{name}.tex").write_text(to_latex(part))
        (args.out_dir / f"{name}.html").write_text(to_html(part))
    fragment = lineage_fragment(table, runs, args.out_dir, [args.runs, args.paper_values])
    (args.out_dir / "tables.lineage.json").write_text(json.dumps(fragment, indent=1))
    counts = table["status"].value_counts().to_dict()
    print(f"tables: {len(table)} cells, {counts}; written to {args.out_dir}")
    return 0
