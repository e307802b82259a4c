"""`trifecta collect` on fake finished runs."""

import json

import pandas as pd
import pytest

from trifecta.analysis import collect
from trifecta.cli import main as cli_main


def fake_run(root, dataset, algo, seed, evals, layers=2, last_k=3):
    run_dir = root / "results/train" / dataset / "s" / algo / f"seed{seed}"
    run_dir.mkdir(parents=True)
    rows = ["epoch,layer,accuracy,max_goodness,max_abs_weight"]
    rows += [f"{epoch},{layer},{acc},{10 * layer},{0.1 * layer}" for epoch, acc in evals.items()
             for layer in range(1, layers + 1)]
    (run_dir / "eval.csv").write_text("\n".join(rows) + "\n")
    summary = {"identity": {"dataset": dataset, "arch": "s", "algo": algo, "seed": seed,
                            "settings": {"last_k": last_k}},
               "identity_sha256": f"{seed:016d}",
               "evals": {str(epoch): {"acc_last": acc, f"acc_last{last_k}": None if algo == "bp" else acc / 2}
                         for epoch, acc in evals.items()}}
    (run_dir / "metrics.json").write_text(json.dumps(summary))
    return run_dir / "metrics.json"


def test_collect_builds_tidy_tables(tmp_path):
    paths = [fake_run(tmp_path, "mnist5k", "vff", 1, {1: 0.3, 5: 0.5}),
             fake_run(tmp_path, "mnist5k", "tff", 0, {5: 0.8}),
             fake_run(tmp_path, "mnist5k", "bp", 0, {5: 0.9}, layers=1)]
    runs, layers = collect.collect(paths)
    assert list(zip(runs.algo, runs.seed, runs.epoch)) == [("bp", 0, 5), ("tff", 0, 5), ("vff", 1, 1), ("vff", 1, 5)]
    assert runs.acc_last.tolist() == [0.9, 0.8, 0.3, 0.5]
    assert runs.acc_last_k.isna().tolist() == [True, False, False, False]
    assert runs.acc_last_k.iloc[1] == 0.4 and (runs.last_k == 3).all()
    assert runs.run_dir.iloc[1].endswith("results/train/mnist5k/s/tff/seed0")
    assert runs.identity_sha256.iloc[2] == "0000000000000001"
    assert len(layers) == 1 + 2 + 4
    vff = layers[layers.algo == "vff"]
    assert vff[["epoch", "layer", "accuracy"]].values.tolist() == [[1, 1, 0.3], [1, 2, 0.3], [5, 1, 0.5], [5, 2, 0.5]]


def test_collect_command_writes_both_files(tmp_path):
    paths = [str(fake_run(tmp_path, "mnist5k", "tff", s, {2: 0.7})) for s in (0, 1)]
    out, layers_out = tmp_path / "tables/runs.csv", tmp_path / "tables/layers.csv"
    assert cli_main(["collect", "--runs", *paths, "--out", str(out), "--layers-out", str(layers_out)]) == 0
    assert len(pd.read_csv(out)) == 2 and len(pd.read_csv(layers_out)) == 4


def test_collect_reports_a_missing_run(tmp_path):
    with pytest.raises(FileNotFoundError):
        collect.collect([tmp_path / "nope/metrics.json"])
