"""What every figure draws with (figures.py draws them): a figure's `Context` (the tables it reads, its
options, and the runs it used, for the lineage) and the axes helpers the figures share.

A figure of one training run shows the best seed (highest last-layer test accuracy at the last evaluated
epoch), as the paper shows its "best-performing" model; `Context.best` picks it. Figures over seeds read every
seed's rows with `Context.all_seeds`.
"""

from dataclasses import dataclass, field

import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from trifecta.analysis.cells import best_seed
from trifecta.planning import paper
from trifecta.planning.runs import run_id

LAYER_PALETTE = "viridis"
ACC = "test accuracy (%)"
GRAD = "gradient ℓ2 norm (log scale)"
GOOD = "goodness (mean squared activation)"


@dataclass
class Context:
    runs: pd.DataFrame
    layers: pd.DataFrame
    dataset: str
    arch: str
    algos: list[str]
    options: dict = field(default_factory=dict)  # each option the figure takes -> its value or default
    # (planning/figurejob.py's figure_options)
    probe: pd.DataFrame | None = None
    weights: list[dict] = field(default_factory=list)
    epoch_means: pd.DataFrame | None = None  # epochs.csv of `trifecta collect` (Figures 3, 5)
    steps: pd.DataFrame | None = None  # steps.csv of `trifecta collect`, thinned (Figures 2, 7)
    used: dict = field(default_factory=dict)  # run id -> run dir, filled as runs are read
    snapshots: list = field(default_factory=list)  # snapshots behind exported weights

    def select(self, frame: pd.DataFrame, algo: str) -> pd.DataFrame:
        rows = frame[(frame["dataset"] == self.dataset) & (frame["arch"] == self.arch) & (frame["algo"] == algo)]
        if rows.empty:
            raise ValueError(f"no data for {self.dataset}/{self.arch}/{algo}")
        return rows

    def best(self, algo: str) -> pd.Series:
        """runs.csv row of the best seed; records the run as used."""
        row, _ = best_seed(self.runs, self.dataset, self.arch, algo)
        self.used[run_id(self.dataset, self.arch, algo, row["seed"])] = str(row["run_dir"])
        return row

    def best_layers(self, algo: str) -> pd.DataFrame:
        seed = self.best(algo)["seed"]
        rows = self.select(self.layers, algo)
        return rows[rows["seed"] == seed].assign(accuracy=lambda d: 100 * d["accuracy"])

    def best_of(self, frame: pd.DataFrame | None, algo: str, option: str) -> pd.DataFrame:
        """The best seed's rows of a collected step table (`option`: the command-line option that gives it)."""
        if frame is None:
            raise ValueError(f"this figure needs {option} (from trifecta collect)")
        seed = self.best(algo)["seed"]
        rows = self.select(frame, algo)
        return rows[rows["seed"] == seed]

    def all_seeds(self, frame: pd.DataFrame, algo: str) -> pd.DataFrame:
        rows = self.select(frame, algo)
        for seed in rows["seed"].unique():
            match = self.runs[(self.runs["dataset"] == self.dataset) & (self.runs["arch"] == self.arch)
                              & (self.runs["algo"] == algo) & (self.runs["seed"] == seed)]
            self.used[run_id(self.dataset, self.arch, algo, seed)] = str(match["run_dir"].iloc[0])
        return rows


# ---- Axes ----

def log_axis(ax) -> None:
    """Log-scaled y with plain tick labels (0.3, 1, 10): readable, and no slow mathtext layout."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def layer_lines(ax, frame, x, y, *, marker=True, legend=True):
    """One line per layer (sequential colours), legend outside on the right."""
    few = frame[x].nunique() <= 30
    sns.lineplot(frame, x=x, y=y, hue="layer", palette=LAYER_PALETTE, ax=ax, marker="o" if few and marker else None,
                 legend="full" if legend else False, linewidth=1.2)
    if legend:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1.01, 1), title="layer", fontsize="small",
                        ncols=2 if frame["layer"].nunique() > 6 else 1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def grad_norms_by_algorithm(ax, steps: dict, layer: int) -> None:
    """One layer's gradient norm at each step, one line per algorithm, log scale."""
    frame = pd.concat([s.assign(algorithm=paper.algo_label(a)) for a, s in steps.items()]).dropna(subset=["grad_norm"])
    sns.lineplot(frame[frame["layer"] == layer], x="step", y="grad_norm", hue="algorithm", ax=ax, linewidth=0.6,
                 estimator=None)
    log_axis(ax)
    ax.set(title=f"layer {layer}", xlabel="training step", ylabel=GRAD)
