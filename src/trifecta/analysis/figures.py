"""Figures 1–10 of the paper from the tidy logs: `trifecta figure --name figN ...` makes one figure per call.

    trifecta figure --name fig1 --runs results/tables/runs.csv --layers results/tables/layers.csv \
        --dataset cifar10 --arch s --algos symba-ln symba-bn \
        --png results/figures/fig1.png --pdf results/figures/fig1.pdf --lineage results/figures/fig1.lineage.json

Inputs are the files named on the command line, nothing else: runs.csv and layers.csv, the epoch means
(epochs.csv, Figures 3 and 5) and thinned steps (steps.csv, Figures 2 and 7) of `trifecta collect`, the probe
table (Figure 8) and weight matrices exported by `trifecta export-weights` (Figure 10); never checkpoints. A
figure of one training run shows the best seed (highest last-layer test accuracy at the last evaluated epoch),
as the paper shows its "best-performing" model; Figures 8 and 9 show the mean and standard deviation over
seeds. A figure's options are declared, with their defaults, in planning/paper.py (`FIGURE_OPTIONS`) and reach
its drawing function as `ctx.options`; the Context and the axes helpers the figures share are in plotting.py.
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from trifecta.analysis.plotting import (ACC, GOOD, GRAD, LAYER_PALETTE, Context,  # noqa: E402
                                        grad_norms_by_algorithm, layer_lines, log_axis)
from trifecta.planning import paper  # noqa: E402
from trifecta.planning.figurejob import figure_options  # noqa: E402
from trifecta.training.registry import get_arch  # noqa: E402


# ---- Figures ----

def accuracy_per_layer(ctx: Context):
    """Figures 1 and 4: test accuracy of every layer during training, one panel per algorithm."""
    fig, axes = plt.subplots(len(ctx.algos), 1, figsize=(6.5, 3.2 * len(ctx.algos)), sharex=True, squeeze=False)
    for ax, algo in zip(axes[:, 0], ctx.algos):
        layer_lines(ax, ctx.best_layers(algo), "epoch", "accuracy")
        ax.set(title=paper.algo_label(algo), ylabel=ACC, xlabel="epoch")
    return fig


def grad_norms_of_layers(ctx: Context):
    """Gradient norms of the chosen layers (default first and last) at each step, one line per algorithm."""
    steps = {algo: ctx.best_of(ctx.steps, algo, "--steps") for algo in ctx.algos}
    last = int(max(s["layer"].max() for s in steps.values()))
    shown = ctx.options["layers"] or [1, last]
    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 3.4), sharey=True, squeeze=False)
    for ax, layer in zip(axes[0], shown):
        grad_norms_by_algorithm(ax, steps, layer)
    return fig


def accuracy_and_separation(ctx: Context):
    """Test accuracy (top) and separation (bottom) of every layer during training."""
    algo = ctx.algos[0]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6.4), sharex=True)
    layer_lines(top, ctx.best_layers(algo), "epoch", "accuracy")
    top.set(title=paper.algo_label(algo), ylabel=ACC)
    layer_lines(bottom, ctx.best_of(ctx.epoch_means, algo, "--epoch-means"), "epoch", "separation", marker=False)
    bottom.set(ylabel="separation g⁺ − g⁻ (epoch mean)", xlabel="epoch")
    return fig


def positive_and_negative_goodness(ctx: Context):
    """Mean positive (left) and negative (right) goodness of every layer during training."""
    means = ctx.best_of(ctx.epoch_means, ctx.algos[0], "--epoch-means")
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 3.6))
    for ax, column, title in [(axes[0], "g_pos", "positive"), (axes[1], "g_neg", "negative")]:
        layer_lines(ax, means, "epoch", column, marker=False, legend=ax is axes[1])
        ax.set(title=f"{paper.algo_label(ctx.algos[0])}: {title} goodness, epoch mean", xlabel="epoch",
               ylabel=GOOD if ax is axes[0] else "")
    return fig


def goodness_and_weight_at_epochs(ctx: Context):
    """Maximal test goodness (left) and maximal |weight| (right) per layer at several epochs."""
    rows = ctx.best_layers(ctx.algos[0])
    evaluated = sorted(rows["epoch"].unique())
    epochs = ctx.options["epochs"] or sorted({evaluated[0], evaluated[len(evaluated) // 2], evaluated[-1]})
    missing = sorted(set(epochs) - set(evaluated))
    if missing:
        raise ValueError(f"epochs {missing} were not evaluated (evaluated: {evaluated}); fix the figure's epochs")
    rows = rows[rows["epoch"].isin(epochs)].assign(epoch=lambda d: d["epoch"].map(lambda e: f"epoch {e}"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, column, label in [(axes[0], "max_goodness", "maximal test goodness"),
                              (axes[1], "max_abs_weight", "maximal |weight|")]:
        sns.lineplot(rows, x="layer", y=column, hue="epoch", marker="o", ax=ax, palette="rocket_r")
        ax.set(title=paper.algo_label(ctx.algos[0]), xlabel="layer", ylabel=label, xticks=sorted(rows["layer"].unique()))
    return fig


def grad_norms_by_normalisation(ctx: Context):
    """Left: gradient norms of every layer of the first algorithm; right: one layer, every algorithm."""
    steps = {algo: ctx.best_of(ctx.steps, algo, "--steps").dropna(subset=["grad_norm"]) for algo in ctx.algos}
    first = steps[ctx.algos[0]]
    layer = ctx.options["layers"][-1] if ctx.options["layers"] else int(first["layer"].max())
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    sns.lineplot(first, x="step", y="grad_norm", hue="layer", palette=LAYER_PALETTE, ax=left, linewidth=0.6,
                 estimator=None, legend="full")
    sns.move_legend(left, "upper left", bbox_to_anchor=(1.01, 1), title="layer", fontsize="small")
    log_axis(left)
    left.set(title=f"{paper.algo_label(ctx.algos[0])}: every layer", xlabel="training step", ylabel=GRAD)
    grad_norms_by_algorithm(right, steps, layer)
    return fig


def probe_accuracy(ctx: Context):
    """Test accuracy of a backprop-trained probe on each layer's frozen features (mean ± sd over seeds)."""
    if ctx.probe is None:
        raise ValueError("figure 8 needs --probe")
    frame = pd.concat([ctx.all_seeds(ctx.probe, a).assign(algorithm=paper.algo_label(a)) for a in ctx.algos])
    if ctx.options["epoch"] is not None:
        frame = frame[frame["epoch"] == ctx.options["epoch"]]
    frame = frame.assign(probe_accuracy=100 * frame["probe_accuracy"])
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    sns.lineplot(frame, x="layer", y="probe_accuracy", hue="algorithm", marker="o", errorbar="sd",
                 err_style="bars", ax=ax)
    ax.set(xlabel="layer", ylabel=f"probe {ACC}", xticks=sorted(frame["layer"].unique()))
    return fig


def weight_and_goodness_over_seeds(ctx: Context):
    """Maximal |weight| (left) and maximal test goodness (right) per layer (mean ± sd over seeds)."""
    parts = []
    for algo in ctx.algos:
        rows = ctx.all_seeds(ctx.layers, algo)
        epoch = ctx.options["epoch"] if ctx.options["epoch"] is not None else rows["epoch"].max()
        if not (rows["epoch"] == epoch).any():
            raise ValueError(f"{ctx.dataset}/{ctx.arch}/{algo} was not evaluated at epoch {epoch}")
        parts.append(rows[rows["epoch"] == epoch].assign(algorithm=paper.algo_label(algo)))
    frame = pd.concat(parts)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, column, label in [(axes[0], "max_abs_weight", "maximal |weight|"),
                              (axes[1], "max_goodness", "maximal test goodness")]:
        sns.lineplot(frame, x="layer", y=column, hue="algorithm", marker="o", errorbar="sd", err_style="bars", ax=ax)
        ax.set(xlabel="layer", ylabel=label, xticks=sorted(frame["layer"].unique()))
    return fig


def weight_matrices(ctx: Context):
    """Weight matrix of one layer per algorithm (outputs x inputs), clamped to ±clamp."""
    if not ctx.weights:
        raise ValueError("figure 10 needs --weights (from trifecta export-weights)")
    fig, axes = plt.subplots(1, len(ctx.weights), figsize=(4.4 * len(ctx.weights) + 0.8, 4.4), squeeze=False)
    conv = get_arch(ctx.arch).conv
    clamp = ctx.options["clamp"]
    for ax, w in zip(axes[0], ctx.weights):
        image = ax.imshow(np.clip(w["weight"], -clamp, clamp), cmap="RdBu_r", vmin=-clamp, vmax=clamp,
                          interpolation="nearest", aspect="auto", rasterized=True)
        ax.set(title=f"{paper.algo_label(str(w['algo']))}, layer {int(w['layer'])}, epoch {int(w['epoch'])}",
               xlabel="input (channel × 3×3 kernel position)" if conv else "input neuron",
               ylabel=("output channel" if conv else "output neuron") if ax is axes[0, 0] else "")
        ax.grid(False)
        ctx.used[str(w["run_id"])] = str(w["run_dir"])
        ctx.snapshots.append({"run": str(w["run_id"]), "epoch": int(w["epoch"]), "sha256": str(w["snapshot_sha256"])})
    fig.colorbar(image, ax=axes[0].tolist(), label=f"weight (clamped to ±{clamp})")
    return fig


DRAW = {"fig1": accuracy_per_layer, "fig2": grad_norms_of_layers, "fig3": accuracy_and_separation,
        "fig4": accuracy_per_layer, "fig5": positive_and_negative_goodness, "fig6": goodness_and_weight_at_epochs,
        "fig7": grad_norms_by_normalisation, "fig8": probe_accuracy, "fig9": weight_and_goodness_over_seeds,
        "fig10": weight_matrices}
assert set(DRAW) == set(paper.FIGURES), "a figure of the paper without its function (or the reverse)"


# ---- Command line ----

def make_figure(name: str, ctx: Context, png: Path, pdf: Path) -> dict:
    """Draw, save PNG and PDF, and return the figure's lineage fragment."""
    if name not in DRAW:
        raise ValueError(f"unknown figure '{name}'; choose one of: {', '.join(DRAW)}")
    sns.set_theme(style="whitegrid", context="paper")
    fig = DRAW[name](ctx)
    fig.suptitle(f"{ctx.dataset}, {paper.arch_label(ctx.arch)}", fontsize="medium")
    if name != "fig10":  # fig10's shared colour bar does not fit tight_layout
        fig.tight_layout()
    for path in (png, pdf):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return {"artefacts": [{"kind": "figure", "id": name, "files": [str(png), str(pdf)], "runs": sorted(ctx.used),
                           "snapshots": ctx.snapshots}],
            "runs": ctx.used, "outputs": [str(png), str(pdf)]}


def build_parser() -> argparse.ArgumentParser:
    """The command's options; a figure's options (paper.FIGURE_OPTIONS) as declared, checked in main."""
    p = argparse.ArgumentParser(prog="trifecta figure", description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, choices=list(DRAW))
    p.add_argument("--runs", type=Path, required=True, help="runs.csv")
    p.add_argument("--layers", type=Path, required=True, help="layers.csv")
    p.add_argument("--probe", type=Path, help="probe table (figure 8)")
    p.add_argument("--epoch-means", type=Path, help="epochs.csv of trifecta collect (figures 3, 5)")
    p.add_argument("--steps", type=Path, help="steps.csv of trifecta collect (figures 2, 7)")
    p.add_argument("--weights", type=Path, nargs="*", default=[], help=".npz from export-weights (figure 10)")
    p.add_argument("--dataset", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--algos", nargs="+", required=True)
    for option in paper.FIGURE_OPTIONS.values():
        takers = [name for name, figure in paper.FIGURES.items() if option.name in figure.options]
        default = "" if option.default is None else f" (default: {option.default})"
        p.add_argument(f"--{option.command_option}", dest=f"option_{option.name}", metavar=option.name.upper(),
                       type=option.type, nargs="*" if option.many else None,
                       help=f"{', '.join(takers)}: {option.help}{default}")
    p.add_argument("--png", type=Path, required=True)
    p.add_argument("--pdf", type=Path, required=True)
    p.add_argument("--lineage", type=Path, required=True, help="lineage fragment (JSON)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    given = {key: getattr(args, f"option_{key}") for key in paper.FIGURE_OPTIONS}
    given = {key: value for key, value in given.items() if value is not None}  # the options given
    ctx = Context(pd.read_csv(args.runs), pd.read_csv(args.layers), args.dataset, args.arch, args.algos,
                  figure_options(args.name, given, args.arch), pd.read_csv(args.probe) if args.probe else None,
                  [dict(np.load(p, allow_pickle=False)) for p in args.weights],
                  *(pd.read_csv(p) if p else None for p in (args.epoch_means, args.steps)))
    fragment = make_figure(args.name, ctx, args.png, args.pdf)
    inputs = [p for p in (args.runs, args.layers, args.probe, args.epoch_means, args.steps) if p] + list(args.weights)
    fragment["inputs"] = [str(p) for p in inputs]
    args.lineage.parent.mkdir(parents=True, exist_ok=True)
    args.lineage.write_text(json.dumps(fragment, indent=1))
    print(f"figure {args.name}: {len(ctx.used)} runs -> {args.png}, {args.pdf}")
    return 0
