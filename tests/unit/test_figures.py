"""Every figure renders from small tidy fixtures (PNG and PDF) and names the runs it used."""

import json

import numpy as np
import pandas as pd
import pytest

from trifecta import figures, registry

ALGOS = ("symba-ln", "symba-bn", "symba-none")
EPOCHS = (1, 2, 3)
LAYERS = 6


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    """runs.csv, layers.csv, steps.csv per run, a probe table and exported weights for mnist5k/f/* x 2 seeds."""
    root = tmp_path_factory.mktemp("figures")
    rng = np.random.default_rng(0)
    runs, layers, probe = [], [], []
    for algo in ALGOS:
        for seed in (0, 1):
            run_dir = root / "train" / algo / f"seed{seed}"
            run_dir.mkdir(parents=True)
            steps = pd.DataFrame([{"epoch": e, "step": (e - 1) * 8 + s, "layer": layer, "loss": 0.5,
                                   "separation": 0.1 * e * layer, "g_pos": 1 + 0.1 * e, "g_neg": 1 - 0.05 * e,
                                   "grad_norm": float(rng.lognormal()) if layer < LAYERS or s % 2 else np.nan}
                                  for e in EPOCHS for s in range(8) for layer in range(1, LAYERS + 1)])
            steps.to_csv(run_dir / "steps.csv", index=False)
            for epoch in EPOCHS:
                runs.append({"dataset": "mnist5k", "arch": "f", "algo": algo, "seed": seed, "epoch": epoch,
                             "acc_last": 0.5 + 0.1 * epoch + 0.01 * seed, "acc_last_k": 0.6, "last_k": 3,
                             "run_dir": str(run_dir), "identity_sha256": "0" * 16})
                layers += [{"dataset": "mnist5k", "arch": "f", "algo": algo, "seed": seed, "epoch": epoch,
                            "layer": layer, "accuracy": 0.1 * layer + 0.05 * epoch, "max_goodness": 3.0 + layer,
                            "max_abs_weight": 0.2 + 0.01 * layer} for layer in range(1, LAYERS + 1)]
            probe += [{"dataset": "mnist5k", "arch": "f", "algo": algo, "seed": seed, "epoch": 3, "layer": layer,
                       "probe_accuracy": 0.9 - 0.02 * layer} for layer in range(1, LAYERS + 1)]
    pd.DataFrame(runs).to_csv(root / "runs.csv", index=False)
    pd.DataFrame(layers).to_csv(root / "layers.csv", index=False)
    pd.DataFrame(probe).to_csv(root / "probe.csv", index=False)
    weights = []
    for algo in ALGOS:
        path = root / f"{algo}.npz"
        with open(path, "wb") as f:
            np.savez(f, weight=rng.normal(0, 0.2, (32, 48)).astype(np.float32), run_id=f"mnist5k/f/{algo}/seed1",
                     run_dir=str(root / "train" / algo / "seed1"), algo=algo, epoch=3, layer=6, snapshot_sha256="ab" * 32)
        weights.append(str(path))
    return root, weights


EXTRA = {"fig2": ["--show-layers", "1", "6"], "fig6": ["--epochs", "1", "3"], "fig7": ["--show-layers", "6"],
         "fig9": ["--epoch", "3"], "fig10": ["--clamp", "0.3"]}


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_figure_renders_png_and_pdf(fixtures, tmp_path, name):
    root, weights = fixtures
    algos = ["symba-ln"] if name in ("fig3", "fig4", "fig5", "fig6") else list(ALGOS)
    args = ["--name", name, "--runs", str(root / "runs.csv"), "--layers", str(root / "layers.csv"),
            "--dataset", "mnist5k", "--arch", "f", "--algos", *algos, *EXTRA.get(name, []),
            "--png", str(tmp_path / f"{name}.png"), "--pdf", str(tmp_path / f"{name}.pdf"),
            "--lineage", str(tmp_path / f"{name}.json")]
    if name == "fig8":
        args += ["--probe", str(root / "probe.csv")]
    if name == "fig10":
        args += ["--weights", *weights]
    assert figures.main(args) == 0
    assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / f"{name}.pdf").read_bytes()[:4] == b"%PDF"
    fragment = json.loads((tmp_path / f"{name}.json").read_text())
    used = fragment["artefacts"][0]["runs"]
    if name in ("fig8", "fig9"):  # every seed
        assert len(used) == 2 * len(algos)
    else:  # the best seed (seed 1 has the higher accuracy)
        assert used == sorted(f"mnist5k/f/{a}/seed1" for a in algos)
    assert set(used) == set(fragment["runs"]) and str(root / "runs.csv") in fragment["inputs"]
    if name == "fig10":
        assert len(fragment["artefacts"][0]["snapshots"]) == 3


def test_unevaluated_epochs_and_unknown_runs_are_errors(fixtures, tmp_path):
    root, _ = fixtures
    ctx = figures.Context(pd.read_csv(root / "runs.csv"), pd.read_csv(root / "layers.csv"), "mnist5k", "f",
                          ["symba-ln"], epochs=[1, 100])
    with pytest.raises(ValueError, match=r"epochs \[100\] were not evaluated"):
        figures.make_figure("fig6", ctx, tmp_path / "a.png", tmp_path / "a.pdf")
    ctx = figures.Context(ctx.runs, ctx.layers, "mnist5k", "f", ["tff"])
    with pytest.raises(ValueError, match="no runs of mnist5k/f/tff"):
        figures.make_figure("fig1", ctx, tmp_path / "a.png", tmp_path / "a.pdf")


def test_algorithm_labels():
    assert registry.algo_label("symba-bn") == "SymBa, batch norm"
    assert registry.algo_label("ftl10-ln-olu") == "FTL τ=10, layer norm, OLU"
    assert registry.algo_label("tff").startswith("TFF")
