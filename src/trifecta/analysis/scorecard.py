"""A reproduction scorecard: every cell of Tables 1–3 judged reproduced, not reproduced or inconclusive.

    trifecta scorecard --tables results/tables/table1.csv results/tables/table2.csv results/tables/table3.csv \
        --out-csv results/tables/scorecard.csv --out-md results/tables/scorecard.md

The rule. Δ = ours − paper, the difference of the mean test accuracies in percentage points. Its 90 %
confidence interval is Welch's t interval: se = sqrt(s_ours²/n_ours + s_paper²/n_paper) with the sample
standard deviations (ddof 1) and n_paper = 3 (the paper reports each of its own cells as mean ± std over
3 runs), Welch–Satterthwaite degrees of freedom df = se⁴ / ((s_ours²/n_ours)²/(n_ours − 1) +
(s_paper²/n_paper)²/(n_paper − 1)), and half-width t_{0.95, df} · se. A paper value printed without a
spread (rows quoted from other works) is taken as a constant: se = s_ours/sqrt(n_ours), df = n_ours − 1;
the same holds when one side's spread is 0 (df is then the other side's n − 1), and when both spreads are 0
the interval is the point Δ itself. With the equivalence margin δ = 2.0 percentage points a cell is
"reproduced" when the whole interval lies inside (−δ, +δ) (two one-sided tests of equivalence, α = 0.05),
"not reproduced" when the whole interval lies outside [−δ, +δ] (a one-sided test of |Δ| > δ, α = 0.05), and
"inconclusive" otherwise.

Cells that cannot be judged get no verdict and are not counted, with the first reason that applies: no
paper value, a stand-in (our value comes from another dataset, architecture or epoch), no value of ours,
or a single seed of ours (no spread). Their difference is still given where both values exist.

Writes scorecard.csv (one row per cell: ours, paper, difference, interval, verdict, reason) and
scorecard.md (the rule, one summary line per table and the judged cells).
"""

import argparse
import math
from pathlib import Path

import pandas as pd
from scipy import stats

MARGIN = 2.0  # equivalence margin δ, percentage points
N_PAPER = 3  # runs behind each of the paper's own cells
LEVEL = 0.90  # confidence level of the interval (two one-sided tests at α = 0.05)
STRINGS = ["table", "row", "column", "paper_mean", "paper_std", "stand_in", "quoted_from"]
SCORECARD_COLUMNS = ["table", "row", "column", "epoch", "ours_mean", "ours_std", "n_seeds", "paper_mean", "paper_std",
           "difference", "ci_low", "ci_high", "verdict", "reason"]
NOT_JUDGED = {"stand-in": "stand-in{s}", "no value of ours": "without our value",
              "no paper value": "without a paper value", "1 seed": "with one seed"}  # reason prefix -> label


def verdict(ours_mean, ours_std, n_ours, paper_mean, paper_std, n_paper=N_PAPER,
            margin=MARGIN) -> tuple[str, float, float, float]:
    """(verdict, Δ, low, high) of ours vs the paper by the rule above; paper_std None (or NaN): no spread."""
    if n_ours < 2 or pd.isna(ours_std):
        raise ValueError(f"a verdict needs a spread of ours: n = {n_ours}, std = {ours_std}")
    diff = float(ours_mean) - float(paper_mean)
    a = float(ours_std) ** 2 / n_ours
    b = 0.0 if paper_std is None or pd.isna(paper_std) else float(paper_std) ** 2 / n_paper
    se = math.sqrt(a + b)
    if se == 0:
        low = high = diff
    else:  # Welch–Satterthwaite; a zero term drops out, leaving the other side's n − 1
        df = se ** 4 / (a ** 2 / (n_ours - 1) + b ** 2 / (n_paper - 1))
        half = float(stats.t.ppf(1 - (1 - LEVEL) / 2, df)) * se
        low, high = diff - half, diff + half
    if -margin < low and high < margin:
        return "reproduced", diff, low, high
    if low > margin or high < -margin:
        return "not reproduced", diff, low, high
    return "inconclusive", diff, low, high


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def score(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of `trifecta tables` with its difference, 90 % interval, verdict and reason."""
    rows = []
    for c in cells.to_dict("records"):
        paper_mean, paper_std, stand_in = _text(c["paper_mean"]), _text(c["paper_std"]), _text(c.get("stand_in"))
        n = 0 if pd.isna(c["n_seeds"]) else int(c["n_seeds"])
        has_ours = not pd.isna(c["ours_mean"])
        out = {k: c[k] for k in ["table", "row", "column", "epoch", "ours_mean", "ours_std"]}
        out.update(n_seeds=n, paper_mean=paper_mean, paper_std=paper_std, ci_low=math.nan, ci_high=math.nan,
                   difference=float(c["ours_mean"]) - float(paper_mean) if has_ours and paper_mean else math.nan,
                   verdict="", reason="")
        if not paper_mean:
            out["reason"] = "no paper value"
        elif stand_in:
            out["reason"] = f"stand-in: ours from {stand_in}"
        elif not has_ours:
            out["reason"] = "no value of ours"
        elif n < 2 or pd.isna(c["ours_std"]):
            out["reason"] = "1 seed: no spread"
        else:
            out["verdict"], out["difference"], out["ci_low"], out["ci_high"] = verdict(
                c["ours_mean"], c["ours_std"], n, paper_mean, paper_std or None)
        rows.append(out)
    return pd.DataFrame(rows, columns=SCORECARD_COLUMNS)


def summary_line(scored: pd.DataFrame, table: str) -> str:
    """'Table 2: 31 of 45 judged cells reproduced, 6 not, 8 inconclusive (12 cells not judged: ...)'."""
    part = scored[scored["table"] == table]
    judged = part[part["verdict"] != ""]
    counts = judged["verdict"].value_counts()
    line = (f"{table.replace('table', 'Table ')}: {counts.get('reproduced', 0)} of {len(judged)} judged "
            f"cell{'s' * (len(judged) != 1)} reproduced, {counts.get('not reproduced', 0)} not, "
            f"{counts.get('inconclusive', 0)} inconclusive")
    reasons = part.loc[part["verdict"] == "", "reason"].str.split(":").str[0].value_counts()
    skipped = {k: int(reasons[k]) for k in NOT_JUDGED if k in reasons}
    if skipped:
        why = ", ".join(f"{n} {NOT_JUDGED[k].format(s='s' * (n != 1))}" for k, n in skipped.items())
        total = sum(skipped.values())
        line += f" ({total} cell{'s' * (total != 1)} not judged: {why})"
    return line


def _signed(x: float) -> str:
    return f"{x:+.2f}".replace("-", "−")


def to_markdown(scored: pd.DataFrame) -> str:
    """The scorecard as Markdown: the rule, one summary line per table and the judged cells."""
    lines = ["## Reproduction scorecard", "",
             f"Δ = ours − paper in percentage points, with its {LEVEL * 100:.0f} % Welch t confidence interval from "
             f"both means ± sample std (n = {N_PAPER} runs for the paper; a paper value printed without a spread is "
             f"taken as a constant). A cell is *reproduced* when the whole interval lies inside ±{MARGIN:.1f} pp "
             f"(equivalence by two one-sided tests, α = 0.05), *not reproduced* when it lies wholly outside "
             f"±{MARGIN:.1f} pp, and *inconclusive* otherwise; stand-ins, single seeds and cells missing a value "
             f"are not judged.", ""]
    lines += [f"- {summary_line(scored, t)}" for t in ["table1", "table2", "table3"] if (scored["table"] == t).any()]
    lines += ["", "| table | cell | ours | paper | Δ | 90 % CI | verdict |", "|---|---|---|---|---|---|---|"]
    for r in scored[scored["verdict"] != ""].to_dict("records"):
        cell = f"{r['row']} @ {r['epoch']} \\| {r['column']}"
        ours = f"{r['ours_mean']:.2f} ± {r['ours_std']:.2f} (n={r['n_seeds']})"
        paper = r["paper_mean"] + (f" ± {r['paper_std']}" if r["paper_std"] else "")
        ci = f"[{_signed(r['ci_low'])}, {_signed(r['ci_high'])}]"
        lines.append(f"| {r['table']} | {cell} | {ours} | {paper} | {_signed(r['difference'])} | {ci} | {r['verdict']} |")
    return "\n".join(lines).replace("tau=", "τ=").replace("alpha=", "α=") + "\n"


def build_parser() -> argparse.ArgumentParser:
    """The command line of `trifecta scorecard`."""
    p = argparse.ArgumentParser(prog="trifecta scorecard", description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", type=Path, nargs="+", required=True, help="tableN.csv from `trifecta tables`")
    p.add_argument("--out-csv", type=Path, required=True)
    p.add_argument("--out-md", type=Path, required=True)
    return p


def read_cells(path: Path) -> pd.DataFrame:
    """A tableN.csv; the paper's numbers stay strings as printed, so that '23.00' stays '23.00'."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={c: str for c in STRINGS})
    present = [c for c in STRINGS if c in frame.columns]
    frame[present] = frame[present].fillna("")
    return frame


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    scored = score(pd.concat([read_cells(p) for p in args.tables], ignore_index=True))
    for path in (args.out_csv, args.out_md):
        path.parent.mkdir(parents=True, exist_ok=True)
    scored.to_csv(args.out_csv, index=False, float_format="%.6g")
    args.out_md.write_text(to_markdown(scored))
    for table in sorted(scored["table"].unique()):
        print(summary_line(scored, table))
    return 0
