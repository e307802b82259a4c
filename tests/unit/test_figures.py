"""Figures 1-10, tested by what they draw: each figure function is called on small tidy tables and its lines,
error bars and images are compared with the numbers they should show; the command writes PNG and PDF and
names the runs it used."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from trifecta.analysis import collect, figures
from trifecta.analysis.plotting import Context
from trifecta.planning import paper
from trifecta.planning.figurejob import figure_job, figure_options
from trifecta.planning.paper import algo_label
from trifecta.planning.runs import Run

ALGOS = ("symba-ln", "symba-bn", "symba-none")
EPOCHS = (1, 2, 3)
LAYERS = 6
STEPS = 8  # per epoch
BEST = 1  # the seed with the higher last-layer accuracy in every fixture run


@pytest.fixture(scope="module")
def tidy(tmp_path_factory):
    """runs.csv, layers.csv, epochs.csv and steps.csv as `trifecta collect` writes them, a probe table and
    exported weights, for mnist5k/f/{ALGOS} x seeds 0, 1; every value distinct, so a wrong pick shows."""
    root = tmp_path_factory.mktemp("figures")
    rng = np.random.default_rng(0)
    runs, layers, steps, probe = [], [], [], []
    for a, algo in enumerate(ALGOS):
        for seed in (0, 1):
            keys = {"dataset": "mnist5k", "arch": "f", "algo": algo, "seed": seed}
            for epoch in EPOCHS:
                runs.append({**keys, "epoch": epoch, "acc_last": 0.5 + 0.1 * epoch + 0.01 * seed, "acc_last_k": 0.6,
                             "last_k": 3, "run_dir": f"train/{algo}/seed{seed}", "identity_sha256": "0" * 16})
                layers += [{**keys, "epoch": epoch, "layer": k, "accuracy": round(rng.uniform(0.1, 0.9), 4),
                            "max_goodness": rng.uniform(1, 9), "max_abs_weight": rng.uniform(0.1, 0.5)}
                           for k in range(1, LAYERS + 1)]
                steps += [{**keys, "epoch": epoch, "step": (epoch - 1) * STEPS + s, "layer": k, "loss": 0.5,
                           "separation": rng.normal(), "g_pos": rng.uniform(1, 2), "g_neg": rng.uniform(0, 1),
                           "grad_norm": rng.lognormal() if k < LAYERS or s % 2 else np.nan}
                          for s in range(STEPS) for k in range(1, LAYERS + 1)]
            probe += [{**keys, "epoch": 3, "layer": k, "probe_accuracy": rng.uniform(0.5, 0.9)}
                      for k in range(1, LAYERS + 1)]
    steps = pd.DataFrame(steps)
    metrics = ["loss", "separation", "g_pos", "g_neg", "grad_norm"]
    epochs = steps.groupby(["dataset", "arch", "algo", "seed", "epoch", "layer"], as_index=False)[metrics].mean()
    frames = {"runs": pd.DataFrame(runs), "layers": pd.DataFrame(layers), "epochs": epochs, "steps": steps,
              "probe": pd.DataFrame(probe)}
    for name, frame in frames.items():
        frame.to_csv(root / f"{name}.csv", index=False)
    weights = []
    for algo in ALGOS:
        path = root / f"{algo}.npz"
        with open(path, "wb") as f:
            np.savez(f, weight=rng.normal(0, 0.3, (32, 48)).astype(np.float32), run_id=f"mnist5k/f/{algo}/seed{BEST}",
                     run_dir=f"train/{algo}/seed{BEST}", algo=algo, epoch=3, layer=6, snapshot_sha256="ab" * 32)
        weights.append(path)
    return root, frames, weights


def context(tidy, name, algos=ALGOS, **options):
    """What figure `name` draws from: the fixture's tables and `options` (its defaults filled in, as the command
    fills them)."""
    _, frames, weights = tidy
    return Context(frames["runs"], frames["layers"], "mnist5k", "f", list(algos), figure_options(name, options, "f"),
                   probe=frames["probe"], weights=[dict(np.load(p)) for p in weights], epoch_means=frames["epochs"],
                   steps=frames["steps"])


def drawn_lines(ax) -> list[np.ndarray]:
    """The data lines of an axis (seaborn's, not legend handles or error-bar markers)."""
    return [line.get_xydata() for line in ax.get_lines() if line.get_label().startswith("_child")]


def best(frame, algo, seed=BEST):
    return frame[(frame["algo"] == algo) & (frame["seed"] == seed)]


def expected_lines(frame, x, y, scale=1.0) -> list[np.ndarray]:
    return [part[[x, y]].to_numpy(float) * [1, scale] for _, part in frame.sort_values([x]).groupby("layer")]


def assert_same_lines(actual, expected):
    key = lambda xy: tuple(np.round(xy, 9).ravel())  # noqa: E731
    assert sorted(map(key, actual)) == sorted(map(key, expected))


# ---- What each figure draws ----

@pytest.mark.parametrize("name", ["fig1", "fig4"])
def test_layerwise_accuracy_is_100x_the_best_seeds_accuracy_of_every_layer(tidy, name):
    _, frames, _ = tidy
    fig = figures.DRAW[name](context(tidy, name, algos=ALGOS[:2]))
    for ax, algo in zip(fig.axes, ALGOS[:2]):
        assert_same_lines(drawn_lines(ax), expected_lines(best(frames["layers"], algo), "epoch", "accuracy", 100))
        assert ax.get_title() == algo_label(algo)


def test_fig3_accuracy_and_the_epoch_means_of_the_separation(tidy):
    _, frames, _ = tidy
    top, bottom = figures.accuracy_and_separation(context(tidy, "fig3", algos=["symba-bn"])).axes[:2]
    assert_same_lines(drawn_lines(top), expected_lines(best(frames["layers"], "symba-bn"), "epoch", "accuracy", 100))
    means = best(frames["steps"], "symba-bn").groupby(["epoch", "layer"], as_index=False)["separation"].mean()
    assert_same_lines(drawn_lines(bottom), expected_lines(means, "epoch", "separation"))


def test_fig5_positive_and_negative_goodness_are_epoch_means(tidy):
    _, frames, _ = tidy
    left, right = figures.positive_and_negative_goodness(context(tidy, "fig5", algos=["symba-ln"])).axes[:2]
    steps = best(frames["steps"], "symba-ln")
    for ax, column in ((left, "g_pos"), (right, "g_neg")):
        means = steps.groupby(["epoch", "layer"], as_index=False)[column].mean()
        assert_same_lines(drawn_lines(ax), expected_lines(means, "epoch", column))


def test_fig6_maximal_goodness_and_weight_per_layer_at_each_epoch(tidy):
    _, frames, _ = tidy
    left, right = figures.goodness_and_weight_at_epochs(context(tidy, "fig6", ["symba-ln"], epochs=[1, 3])).axes[:2]
    rows = best(frames["layers"], "symba-ln")
    for ax, column in ((left, "max_goodness"), (right, "max_abs_weight")):
        expected = [rows[rows["epoch"] == e].sort_values("layer")[["layer", column]].to_numpy(float) for e in (1, 3)]
        assert_same_lines(drawn_lines(ax), expected)


@pytest.mark.parametrize("name", ["fig8", "fig9"])
def test_error_bars_are_the_standard_deviation_over_seeds(tidy, name):
    _, frames, _ = tidy
    fig = figures.DRAW[name](context(tidy, name, epoch=3))
    panels = [("probe", "probe_accuracy", 100)] if name == "fig8" else \
        [("layers", "max_abs_weight", 1), ("layers", "max_goodness", 1)]
    for ax, (table, column, scale) in zip(fig.axes, panels):
        bars = [seg for collection in ax.collections for seg in collection.get_segments()]
        frame = frames[table][frames[table]["epoch"] == 3]
        stats = frame.groupby(["algo", "layer"])[column].agg(["mean", "std"]) * scale  # std: ddof 1
        expected = sorted((layer, round(m - s, 9), round(m + s, 9)) for (_, layer), (m, s) in stats.iterrows())
        assert sorted((x0, round(y0, 9), round(y1, 9)) for (x0, y0), (_, y1) in bars) == expected


@pytest.mark.parametrize("name", ["fig2", "fig7"])
def test_step_curves_are_the_best_seeds_gradient_norms(tidy, name):
    _, frames, _ = tidy
    fig = figures.DRAW[name](context(tidy, name, layers=[1, 6] if name == "fig2" else [6]))
    lines = [xy for ax in fig.axes for xy in drawn_lines(ax)]
    assert lines and all(len(xy) <= collect.MAX_POINTS for xy in lines)
    steps = frames["steps"].dropna(subset=["grad_norm"])
    layer6 = {algo: best(steps, algo).query("layer == 6")[["step", "grad_norm"]].to_numpy(float) for algo in ALGOS}
    right = fig.axes[-1] if name == "fig7" else fig.axes[1]
    assert_same_lines(drawn_lines(right), list(layer6.values()))


def test_steps_are_thinned_to_at_most_max_points_per_run(tmp_path):
    metrics = tmp_path / "run" / "metrics.json"
    metrics.parent.mkdir()
    metrics.write_text(json.dumps({"identity": {"dataset": "mnist5k", "arch": "f", "algo": "symba-bn", "seed": 0}}))
    n = 3 * collect.MAX_POINTS + 5
    rows = pd.DataFrame({"epoch": np.arange(n) // 100 + 1, "step": np.arange(n), "layer": 1, "loss": 1.0,
                         "grad_norm": np.arange(n, dtype=float)})
    rows.to_csv(metrics.parent / "steps.csv", index=False)
    epochs, steps = collect.collect_steps([metrics])
    assert len(steps) <= collect.MAX_POINTS and steps["step"].iloc[0] == 0 and steps["step"].diff().iloc[1] == 4
    assert epochs["grad_norm"].iloc[0] == pytest.approx(49.5)  # the mean over all 100 steps of epoch 1


def test_fig10_shows_the_clamped_weights_of_each_exported_snapshot(tidy):
    _, _, weights = tidy
    fig = figures.weight_matrices(context(tidy, "fig10", clamp=0.3))
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == len(ALGOS)
    for image, path in zip(images, weights):
        np.testing.assert_array_equal(image, np.clip(np.load(path)["weight"], -0.3, 0.3))


# ---- The command: files, used runs, errors ----

EXTRA = {"fig2": ["--show-layers", "1", "6"], "fig6": ["--epochs", "1", "3"], "fig7": ["--show-layers", "6"],
         "fig9": ["--epoch", "3"], "fig10": ["--clamp", "0.3"]}


@pytest.mark.parametrize("name", list(figures.DRAW))
def test_figure_command_writes_png_pdf_and_names_its_runs(tidy, tmp_path, name):
    root, _, weights = tidy
    algos = ["symba-ln"] if name in ("fig3", "fig4", "fig5", "fig6") else list(ALGOS)
    args = ["--name", name, "--runs", str(root / "runs.csv"), "--layers", str(root / "layers.csv"),
            "--epoch-means", str(root / "epochs.csv"), "--steps", str(root / "steps.csv"),
            "--dataset", "mnist5k", "--arch", "f", "--algos", *algos, *EXTRA.get(name, []),
            "--png", str(tmp_path / f"{name}.png"), "--pdf", str(tmp_path / f"{name}.pdf"),
            "--lineage", str(tmp_path / f"{name}.json")]
    if name == "fig8":
        args += ["--probe", str(root / "probe.csv")]
    if name == "fig10":
        args += ["--weights", *map(str, weights)]
    assert figures.main(args) == 0
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    fragment = json.loads((tmp_path / f"{name}.json").read_text())
    expected = {f"mnist5k/f/{a}/seed{s}": f"train/{a}/seed{s}" for a in algos
                for s in ((0, 1) if name in ("fig8", "fig9") else (BEST,))}  # every seed, or the best one
    assert fragment["runs"] == expected and fragment["artefacts"][0]["runs"] == sorted(expected)
    assert str(root / "runs.csv") in fragment["inputs"]
    if name == "fig10":
        assert sorted(s["run"] for s in fragment["artefacts"][0]["snapshots"]) == sorted(expected)


def test_unevaluated_epochs_missing_data_and_unknown_runs_are_errors(tidy, tmp_path):
    ctx = context(tidy, "fig6", ["symba-ln"], epochs=[1, 100])
    with pytest.raises(ValueError, match=r"epochs \[100\] were not evaluated"):
        figures.make_figure("fig6", ctx, tmp_path / "a.png", tmp_path / "a.pdf")
    with pytest.raises(ValueError, match="no runs of mnist5k/f/tff"):
        figures.make_figure("fig1", context(tidy, "fig1", ["tff"]), tmp_path / "a.png", tmp_path / "a.pdf")
    ctx = context(tidy, "fig2", ["symba-ln"])
    ctx.steps = None
    with pytest.raises(ValueError, match="this figure needs --steps"):
        figures.make_figure("fig2", ctx, tmp_path / "a.png", tmp_path / "a.pdf")


def test_a_declared_option_reaches_the_drawing_with_its_default(tidy, tmp_path, monkeypatch):
    """A new option is an `Option` in paper.py, named by a figure, and the drawing code that reads it: the command
    then takes it (its default where it is not given), and a figure's job passes it; an option the figure does
    not take is an error."""
    monkeypatch.setitem(paper.FIGURE_OPTIONS, "bins", paper.Option("bins", "bins of a histogram", default=5))
    monkeypatch.setitem(paper.FIGURES, "fig1", dataclasses.replace(paper.FIGURES["fig1"], options=("bins",)))
    seen = []

    def draw(ctx):  # the drawing code that reads the new option
        seen.append(ctx.options)
        return figures.accuracy_per_layer(ctx)

    monkeypatch.setitem(figures.DRAW, "fig1", draw)
    root, _, _ = tidy
    args = ["--name", "fig1", "--runs", str(root / "runs.csv"), "--layers", str(root / "layers.csv"),
            "--dataset", "mnist5k", "--arch", "f", "--algos", "symba-ln", "--png", str(tmp_path / "a.png"),
            "--pdf", str(tmp_path / "a.pdf"), "--lineage", str(tmp_path / "a.json")]
    assert figures.main(args + ["--bins", "7"]) == 0 and figures.main(args) == 0
    assert seen == [{"bins": 7}, {"bins": 5}]
    entry = {"dataset": "mnist5k", "arch": "f", "algos": ["symba-ln"], "bins": 7}
    assert figure_job("fig1", entry, [Run("mnist5k", "f", "symba-ln", 0)]).args()["bins"] == 7
    with pytest.raises(ValueError, match=r"clamp: fig1 takes no such option \(it takes: bins\)"):
        figures.main(args + ["--clamp", "0.5"])
