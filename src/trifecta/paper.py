"""The paper's Tables 1-3: every cell, what it is computed from, captions and the marks of quoted values.

Plain Python (no pandas, no torch): the workflow reads it while planning, to give each table a target that
depends only on that table's runs. The paper's printed values are in paper_values.csv beside this file.
"""

from pathlib import Path

from trifecta.registry import BASELINES, DATASETS, canonical_name, parse_ff_name

PAPER_VALUES = Path(__file__).with_name("paper_values.csv")
TABLES = ("table1", "table2", "table3")
COLUMNS = {d.name: d.paper_column for d in DATASETS.values() if d.paper_column}  # dataset -> the paper's column
KEY = ["table", "row", "column", "epoch"]
QUOTED = {"VFF/t": "Hinton (2022)", "PEP/t": "Dellaferrera & Kreiman (2022)"}
MARKS = {"Hinton (2022)": "†", "Dellaferrera & Kreiman (2022)": "‡"}
FIGURES = tuple(f"fig{n}" for n in range(1, 11))
STEP_FIGURES = ("fig2", "fig3", "fig5", "fig7")  # drawn from the step metrics (epoch means, thinned steps)
CAPTIONS = {
    "table1": "Table 1: test accuracy (%) of the ablation, shallow CNN, CIFAR-10, 100 epochs, last layer.",
    "table2": "Table 2: test accuracy (%) of the last layer per algorithm, dataset and epoch.",
    "table3": "Table 3: test accuracy (%) of TFF/d at 500 epochs: last layer vs mean goodness of the last three layers.",
}


def layout() -> list[dict]:
    """The cells of Tables 1–3 in the paper's order, each with what it is computed from."""
    cells = []
    losses = [("FTL (tau=2)", "ftl2"), ("FTL (tau=10)", "ftl10"), ("SymBa (alpha=4)", "symba")]
    for row, suffix in [("None", "ln"), ("BN", "bn"), ("OLU", "ln-olu"), ("OLU+BN", "bn-olu")]:
        for column, loss in losses:
            algo = canonical_name(f"{loss}-{suffix}")
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




def source(cell: dict, stand_in: dict) -> tuple[str, str, int]:
    """(dataset, arch, epoch) of our runs behind a cell: the paper's, or a stand-in's where `stand_in` (the
    config's `tables: stand_in:`) maps the cell's dataset, and then also its architecture and epoch."""
    sub = stand_in.get(cell["table"], {})
    dataset, arch, epoch = cell["dataset"], cell["arch"], cell["epoch"]
    if dataset in sub.get("dataset", {}):
        dataset = sub["dataset"][dataset]
        arch = sub.get("arch", {}).get(arch, arch)
        epoch = int(sub.get("epoch", {}).get(str(epoch), epoch))
    return dataset, arch, epoch


def table_runs(table: str, stand_in: dict) -> set[tuple[str, str, str]]:
    """(dataset, arch, algo) of every run the cells of `table` read."""
    return {(*source(cell, stand_in)[:2], cell["algo"]) for cell in layout() if cell["table"] == table}


def algo_label(algo: str) -> str:
    """A readable name of an algorithm, as the figures title it."""
    fixed = {"tff": "TFF (SymBa + BN + OLU)", "vff": "VFF (FTL τ=2 + LN)"}
    if algo in fixed:
        return fixed[algo]
    if algo in BASELINES:
        return BASELINES[algo].label
    spec = parse_ff_name(algo)
    if spec is None:
        return algo
    loss = "SymBa" if spec.loss == "symba" else ("FTL" if spec.tau is None else f"FTL τ={spec.tau:g}")
    norm = {"ln": "layer norm", "bn": "batch norm", "none": "no norm"}[spec.norm]
    return ", ".join([loss, norm] + (["OLU"] if spec.olu else []))
