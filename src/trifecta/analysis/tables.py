"""Tables 1–3 of the paper from finished runs, beside the paper's values: `trifecta tables ...`.

    trifecta tables --metrics results/train/*/*/*/seed*/metrics.json --out-dir results/tables \
        [--table table1 ...] [--configured mnist5k/s/tff/seed0 ...] [--stand-in '{"table2": {...}}']

Each cell is computed by cells.py (mean ± sample std over the seeds, the paper's value, the difference, and
why a cell is missing or partial) and judged by scorecard.py; render.py lays the tables out. `--configured`
lists the runs the config asks for (default: those given): a configured run without a finished metrics.json
makes its cells partial or missing and says why, which is how the interim tables of a running grid read.

Writes per table tableN.csv (one row per cell: ours, paper, difference, verdict, status, reason, runs),
tableN.md, tableN.tex, tableN.html, and tableN.lineage.json (every cell -> its runs, for `trifecta lineage`).
"""

import argparse
import json
from pathlib import Path

import pandas as pd

from trifecta.analysis.collect import collect
from trifecta.analysis.cells import build_tables, parse_configured, read_paper_values
from trifecta.planning.paper import CAPTIONS, PAPER_VALUES, TABLES
from trifecta.analysis.render import to_html, to_latex, to_markdown
from trifecta.analysis.scorecard import score
from trifecta.planning.runs import TRAIN_DIR, run_id

CSV_COLUMNS = ["table", "row", "column", "epoch", "dataset", "arch", "algo", "metric", "ours_mean", "ours_std",
               "n_seeds", "n_configured", "paper_mean", "paper_std", "diff", "verdict", "status", "reason", "stand_in",
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
    used = {x for a in artefacts for x in a["runs"]}
    run_dirs = {rid: str(r.run_dir) for r in runs.itertuples()
                if (rid := run_id(r.dataset, r.arch, r.algo, r.seed)) in used}
    name = table["table"].iloc[0]
    return {"artefacts": artefacts, "runs": run_dirs, "inputs": [str(p) for p in inputs],
            "outputs": [str(out_dir / f"{name}.{ext}") for ext in ("csv", "md", "tex", "html")]}


def write_table(part: pd.DataFrame, runs: pd.DataFrame, out_dir: Path, inputs: list[Path]) -> None:
    name = part["table"].iloc[0]
    part = part.assign(verdict=score(part)["verdict"].to_numpy())
    part[CSV_COLUMNS].to_csv(out_dir / f"{name}.csv", index=False, float_format="%.10g")
    (out_dir / f"{name}.md").write_text(to_markdown(part))
    (out_dir / f"{name}.tex").write_text(to_latex(part))
    (out_dir / f"{name}.html").write_text(to_html(part))
    fragment = lineage_fragment(part, runs, out_dir, inputs)
    (out_dir / f"{name}.lineage.json").write_text(json.dumps(fragment, indent=1))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trifecta tables", description=__doc__.split("\n\n")[0])
    p.add_argument("--metrics", nargs="*", type=Path, default=[], help="metrics.json of each finished run")
    p.add_argument("--table", nargs="+", choices=TABLES, default=list(TABLES), help="which tables (default: all)")
    p.add_argument("--paper-values", type=Path, default=PAPER_VALUES, help="the paper's values (CSV)")
    p.add_argument("--configured", nargs="*", default=None, metavar="RUN",
                   help="configured runs as dataset/arch/algo/seedN or their run directories "
                        "(default: the finished runs given)")
    p.add_argument("--stand-in", default="{}", help='JSON: {"table2": {"dataset": {"mnist": "mnist5k"}, '
                                                    '"arch": {"d": "s"}, "epoch": {"100": 4}}}')
    p.add_argument("--train-dir", type=Path, default=Path(TRAIN_DIR), help="where run directories live")
    p.add_argument("--out-dir", type=Path, required=True)
    return p


def make_tables(metrics: list[Path], out_dir: Path, names=tuple(TABLES), configured=None, stand_in: dict | None = None,
                paper_values: Path = PAPER_VALUES, train_dir: Path = Path(TRAIN_DIR)) -> pd.DataFrame:
    """The tables `names` from the finished runs `metrics` (of the `configured` runs: run ids or directories;
    default, those given), written to out_dir; returns every cell."""
    runs = collect(metrics)[0]
    configured = None if configured is None else parse_configured(configured)
    if configured is not None:  # runs left over from an earlier configuration do not count
        runs = runs.merge(configured, on=["dataset", "arch", "algo", "seed"])[runs.columns]
    table = build_tables(runs, read_paper_values(paper_values), configured, stand_in or {}, train_dir, tables=names)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_table(table[table["table"] == name].reset_index(drop=True), runs, out_dir, [*metrics, paper_values])
    return table


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    table = make_tables(args.metrics, args.out_dir, args.table, args.configured, json.loads(args.stand_in),
                        args.paper_values, args.train_dir)
    for name in args.table:
        part = table[table["table"] == name]
        print(f"{CAPTIONS[name].split(':')[0]}: {len(part)} cells, {part['status'].value_counts().to_dict()}")
    return 0
