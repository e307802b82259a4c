"""Real runs of the workflow on the CPU: a small variant of the embedded default, and (slow) the default itself."""

import json
import time

import pandas as pd
import pytest
import yaml

from tests.workflow.smk import REPO, planned_jobs, snakemake

RUN_COLUMNS = ["dataset", "arch", "algo", "seed", "epoch", "acc_last", "acc_last_k", "last_k", "run_dir",
               "identity_sha256"]
LAYER_COLUMNS = ["dataset", "arch", "algo", "seed", "epoch", "layer", "accuracy", "max_goodness", "max_abs_weight"]

SMALL = {
    "resources": {"gpu": 0, "threads": 1, "mem_mb": 2000},
    "runs": [{"name": "small", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff", "vff"], "seeds": [0, 1],
              "settings": {"epochs": 1, "width": 0.0625, "batch_size": 100, "subset_train": 1000,
                           "subset_test": 500}}],
    "figures": {"fig3": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"]},
                "fig4": {"dataset": "mnist5k", "arch": "s", "algos": ["vff"]}},
}


def check_tables(workdir, runs, eval_epochs, layers_per_arch):
    table = pd.read_csv(workdir / "results/tables/runs.csv")
    assert list(table.columns) == RUN_COLUMNS
    assert len(table) == len(runs) * len(eval_epochs)
    assert set(zip(table.dataset, table.arch, table.algo, table.seed)) == set(runs)
    assert set(table.epoch) == set(eval_epochs)
    assert table.acc_last.between(0, 1).all()
    ff = table[~table.algo.isin(["bp", "fa", "pep"])]
    assert ff.acc_last_k.between(0, 1).all()
    layers = pd.read_csv(workdir / "results/tables/layers.csv")
    assert list(layers.columns) == LAYER_COLUMNS
    assert len(layers) == sum(layers_per_arch[arch] for _, arch, _, _ in runs) * len(eval_epochs)
    assert layers.accuracy.between(0, 1).all()
    return table


def test_small_embedded_variant_end_to_end(workflow_copy):
    workdir, bin_dir = workflow_copy
    (workdir / "small.yaml").write_text(yaml.safe_dump(SMALL))
    snakemake(workdir, "--cores", "2", "--configfile", "small.yaml", bin_dir=bin_dir)

    runs = [("mnist5k", "s", algo, seed) for algo in ("tff", "vff") for seed in (0, 1)]
    check_tables(workdir, runs, [1], {"s": 6})
    run_dir = workdir / "results/train/mnist5k/s/tff/seed0"
    for name in ("run.json", "steps.csv", "eval.csv", "ensemble.csv", "metrics.json"):
        assert (run_dir / name).is_file(), name
    assert (workdir / "logs/train/mnist5k/s/tff/seed0.log").is_file()
    record = json.loads((run_dir / "run.json").read_text())
    assert (workdir / "resources/checkpoints" / record["identity_sha256"]).is_dir()

    again = snakemake(workdir, "--cores", "2", "--configfile", "small.yaml", bin_dir=bin_dir)
    assert "Nothing to be done" in again.stdout + again.stderr
    for name in ("fig3.png", "fig3.pdf", "fig4.png", "fig4.pdf"):
        assert (workdir / "results/figures" / name).stat().st_size > 0
    assert "PASSED" in (workdir / "results/audit.txt").read_text()

    # Editing plotting code reruns the figures (and the lineage and audit that cover them), nothing else.
    with open(workdir / "src/trifecta/figures.py", "a") as f:
        f.write("\n# an edit\n")
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", "small.yaml", bin_dir=bin_dir)
    rules = {rule for rule, _ in planned_jobs(plan)}
    assert "plot_figure" in rules and rules <= {"plot_figure", "write_lineage", "audit_results"}, rules
    (workdir / "src/trifecta/figures.py").write_text((REPO / "src/trifecta/figures.py").read_text())

    # A rerun of a run whose metrics.json is gone (as after a failure) resumes from its checkpoint.
    target = "results/train/mnist5k/s/tff/seed0/metrics.json"
    snakemake(workdir, "--cores", "2", "--configfile", "small.yaml", "--forcerun", target, bin_dir=bin_dir)
    record = json.loads((run_dir / "run.json").read_text())
    assert [r["from_epoch"] for r in record["resumes"]] == [1]
    assert (run_dir / "metrics.json").is_file()


@pytest.mark.slow
def test_embedded_default_end_to_end(workflow_copy):
    """The README's first command: the embedded default on 2 cores (about 3-4 minutes on an idle machine)."""
    workdir, bin_dir = workflow_copy
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", "workflow/embedded.yaml", bin_dir=bin_dir)
    assert not any(rule == "train_model" and "mnist5k" not in out for rule, out in planned_jobs(plan))
    start = time.perf_counter()
    snakemake(workdir, "--cores", "2", "--configfile", "workflow/embedded.yaml", bin_dir=bin_dir, timeout=1800)
    print(f"embedded default: {time.perf_counter() - start:.0f} s")

    embedded = yaml.safe_load((REPO / "workflow/embedded.yaml").read_text())
    runs = [(d, a, algo, s) for e in embedded["runs"] for d in e["datasets"] for a in e["archs"]
            for algo in e["algos"] for s in e["seeds"]]
    assert {algo for _, _, algo, _ in runs} >= {"tff", "vff", "fa", "pep", "bp"}
    epochs = sorted({e for entry in embedded["runs"] for e in entry["settings"]["eval_epochs"]})
    layers = pd.read_csv(workdir / "results/tables/layers.csv")
    per_arch = layers.groupby("arch").layer.max().to_dict()
    table = check_tables(workdir, runs, epochs, per_arch)
    final = table[table.epoch == max(epochs)].groupby("algo").acc_last.mean()
    assert final["bp"] > 0.5 and final["tff"] > 0.3, final
