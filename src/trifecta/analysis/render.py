"""Tables 1-3 as Markdown, LaTeX and HTML in the paper's layout: ours, the paper's value and the difference."""

import html

import pandas as pd

from trifecta.planning.paper import CAPTIONS, MARKS
from trifecta.analysis.scorecard import MARGIN, score, summary_line


def cell_text(mean, std) -> str:
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
    ours = cell_text(row["ours_mean"], row["ours_std"])
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
    lines.append(f"Scorecard ({MARGIN:g}-point equivalence margin, 90 % Welch interval; see scorecard.md): "
                 + summary_line(score(table), table["table"].iloc[0]).split(": ", 1)[1] + ".")
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


