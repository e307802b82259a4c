"""Real runs of the workflow on the CPU: a small variant of the embedded default (with its report, interim
results and reruns), and (slow) the embedded default itself."""

import json
import re
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml

from tests.unit.test_crate import required_issues
from tests.workflow.smk import REPO, job_counts, planned_jobs, snakemake
from trifecta.training.registry import ARCHS, BASELINES

RUN_COLUMNS = ["dataset", "arch", "algo", "seed", "epoch", "acc_last", "acc_last_k", "last_k", "run_dir",
               "identity_sha256"]
LAYER_COLUMNS = ["dataset", "arch", "algo", "seed", "epoch", "layer", "accuracy", "max_goodness", "max_abs_weight"]

SMALL = {
    "resources": {"gpu": 0, "threads": 1, "mem_mb": 2000},
    "preflight": {"activate": False},  # the slow test and the SLURM tests run it
    "runs": [{"name": "small", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff", "vff"], "seeds": [0, 1],
              "settings": {"epochs": 1, "width": 0.0625, "batch_size": 100, "subset_train": 1000,
                           "subset_test": 500}}],
    "tables": {"stand_in": {"table1": {"dataset": {"cifar10": "mnist5k"}, "epoch": {"100": 1}}}},
    "probe": {"activate": False},  # the slow test probes (and tests/unit/test_probe.py)
    "figures": {"fig3": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"]}},  # from the step tables
}
FIGURES = ["fig3"]  # the slow test makes all ten


def layers_per_evaluation(algo: str, arch: str) -> int:
    """Rows of layers.csv per run and evaluation: every FF layer, or a baseline's output layer alone."""
    return 1 if algo in BASELINES else ARCHS[arch].layers


def grid_runs(config: dict) -> dict:
    """(dataset, arch, algo, seed) -> evaluation epochs, for every run of a config's grid."""
    return {(d, a, algo, s): sorted({*e["settings"].get("eval_epochs", []), e["settings"]["epochs"]})
            for e in config["runs"] for d in e["datasets"] for a in e["archs"] for algo in e["algos"]
            for s in e["seeds"]}


def check_tables(workdir, runs: dict):
    """runs.csv and layers.csv hold every run at each of its evaluation epochs, and nothing else."""
    table = pd.read_csv(workdir / "results/tables/runs.csv")
    assert list(table.columns) == RUN_COLUMNS
    assert sorted(zip(table.dataset, table.arch, table.algo, table.seed, table.epoch)) == \
        sorted((*run, epoch) for run, epochs in runs.items() for epoch in epochs)
    assert table.acc_last.between(0, 1).all()
    ff = table[~table.algo.isin(list(BASELINES))]
    assert ff.acc_last_k.between(0, 1).all()
    layers = pd.read_csv(workdir / "results/tables/layers.csv")
    assert list(layers.columns) == LAYER_COLUMNS
    assert len(layers) == sum(layers_per_evaluation(algo, arch) * len(epochs)
                              for (_, arch, algo, _), epochs in runs.items())
    assert layers.accuracy.between(0, 1).all()
    return table


def check_report(workdir, bin_dir, config):
    """`snakemake --report` holds every table, the scorecard, the probe table, every figure and the audit."""
    snakemake(workdir, "--configfile", config, "--report", "results/report.html", bin_dir=bin_dir)
    report = (workdir / "results/report.html").read_text()
    names = ["table1.html", "table2.html", "table3.html", "scorecard.md", "audit.txt",
             *[f"{fig}.png" for fig in FIGURES]]
    missing = [name for name in names if name not in report]
    assert not missing, missing
    assert "Figure 3" in report and "Table 1" in report  # the captions


def test_small_embedded_variant_end_to_end(workflow_copy):
    workdir, bin_dir = workflow_copy
    (workdir / "small.yaml").write_text(yaml.safe_dump(SMALL))
    snakemake(workdir, "--cores", "2", "--configfile", "small.yaml", bin_dir=bin_dir)

    check_tables(workdir, grid_runs(SMALL))
    run_dir = workdir / "results/train/mnist5k/s/tff/seed0"
    for name in ("run.json", "steps.csv", "eval.csv", "ensemble.csv", "metrics.json"):
        assert (run_dir / name).is_file(), name
    log = (workdir / "logs/train/mnist5k/s/tff/seed0.log").read_text()
    assert re.findall(r"epoch (\d)/1: loss", log) == ["1"]  # a line per epoch
    record = json.loads((run_dir / "run.json").read_text())
    assert (workdir / "resources/store" / record["identity_sha256"] / "metrics.json").is_file()
    for fig in FIGURES:
        assert (workdir / "results/figures" / f"{fig}.png").stat().st_size > 0
    scorecard = pd.read_csv(workdir / "results/tables/scorecard.csv")
    assert len(scorecard) == 75 and (scorecard["verdict"].isna()).all()  # stand-ins are never judged
    assert "PASSED" in (workdir / "results/audit.txt").read_text()
    check_report(workdir, bin_dir, "small.yaml")
    crate_file = workdir / "results/ro-crate-metadata.json"
    written = crate_file.read_text()
    crate = json.loads(written)
    trained = {e["@id"] for e in crate["@graph"] if e["@type"] == "CreateAction" and e["@id"].startswith("#train/")}
    assert trained == {f"#train/{d}/{a}/{algo}/seed{s}" for d, a, algo, s in grid_runs(SMALL)}  # every run
    assert required_issues(crate, workdir / "results") == []  # (with its contexts inline: no network here)
    crate_file.write_text(written)

    again = snakemake(workdir, "--cores", "2", "--configfile", "small.yaml", bin_dir=bin_dir)
    assert job_counts(again) == {"all": 1} and "PASSED: 0 failures" in again.stdout + again.stderr  # the check

    # Editing plotting code reruns the figures (and the lineage, audit and crate that cover them), nothing else.
    with open(workdir / "src/trifecta/analysis/figures.py", "a") as f:
        f.write("\nEDITED = 1\n")
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", "small.yaml", bin_dir=bin_dir)
    rules = {rule for rule, _ in planned_jobs(plan)}
    assert "plot_figure" in rules and rules <= {"plot_figure", "write_lineage", "audit_results", "write_crate"}, rules
    (workdir / "src/trifecta/analysis/figures.py").write_text((REPO / "src/trifecta/analysis/figures.py").read_text())

    # Interim results read the finished runs only: a run without metrics.json trains nothing.
    unfinished = workdir / "results/train/mnist5k/s/vff/seed1/metrics.json"
    kept = unfinished.read_bytes()
    unfinished.unlink()
    interim = snakemake(workdir, "interim", "--cores", "2", "--configfile", "small.yaml", bin_dir=bin_dir)
    assert job_counts(interim) == {"interim": 1}  # it trains nothing
    for table in ("table1", "table2", "table3"):
        assert (workdir / f"results/interim/{table}.md").stat().st_size > 0
    assert "(n=1/2)" in (workdir / "results/interim/table1.md").read_text()  # VFF: the cell FTL τ=2 / None
    assert sorted(p.name for p in (workdir / "results/interim/figures").glob("*.png")) == ["fig3.png"]  # TFF's
    unfinished.write_bytes(kept)

    # A forced rerun of a complete run (Snakemake deletes its metrics.json first) finds its identity complete in
    # the store and shows the same files again, without training.
    target = "results/train/mnist5k/s/tff/seed0/metrics.json"
    before = {name: (run_dir / name).read_bytes() for name in ("metrics.json", "eval.csv", "steps.csv")}
    snakemake(workdir, target, "--cores", "2", "--forcerun", target, "--configfile", "small.yaml", bin_dir=bin_dir)
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert "shown in results/train/mnist5k/s/tff/seed0 without training" in \
        (workdir / "logs/train/mnist5k/s/tff/seed0.log").read_text()


@pytest.mark.slow
def test_embedded_default_end_to_end(workflow_copy):
    """The README's first block: the embedded default on 2 cores, then its report."""
    workdir, bin_dir = workflow_copy
    plan = snakemake(workdir, "-n", "--cores", "2", "--configfile", "workflow/embedded.yaml", bin_dir=bin_dir)
    assert not any(rule == "train_model" and "mnist5k" not in out for rule, out in planned_jobs(plan))
    start = time.perf_counter()
    snakemake(workdir, "--cores", "2", "--configfile", "workflow/embedded.yaml", bin_dir=bin_dir, timeout=1800)
    print(f"embedded default: {time.perf_counter() - start:.0f} s")

    runs = grid_runs(yaml.safe_load((REPO / "workflow/embedded.yaml").read_text()))
    assert {algo for _, _, algo, _ in runs} >= {"tff", "vff", "fa", "pep", "bp"}
    table = check_tables(workdir, runs)
    final = table[table.epoch == table.epoch.max()].groupby("algo").acc_last.mean()
    assert final["bp"] > 0.5 and final["tff"] > 0.3, final
    assert "PASSED" in (workdir / "results/audit.txt").read_text()
    assert (workdir / "results/tables/scorecard.csv").exists()
    status = subprocess.run([sys.executable, "-m", "trifecta.cli", "status", "--configfile", "workflow/embedded.yaml",
                             "--json"], cwd=workdir, capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["summary"]["states"]["complete"] == 16
    snakemake(workdir, "--configfile", "workflow/embedded.yaml", "--report", "results/report.html", bin_dir=bin_dir)
    report = (workdir / "results/report.html").read_text()
    assert all(f"fig{n}.png" in report for n in range(1, 11)) and "table3.html" in report
    shutil.rmtree(workdir / "resources/store")  # 100s of MB in the temporary folder


def test_the_download_rule_fetches_once_and_leaves_its_marker(workflow_copy):
    """download_data (local) runs `trifecta download` for a dataset of the grid and touches its marker, which
    training jobs wait for."""
    from tests.fakedata import write_fake_dataset

    workdir, bin_dir = workflow_copy
    write_fake_dataset("mnist", workdir / "resources/data")  # torchvision finds every file: no network needed
    overlay = {"runs": [{"name": "m", "datasets": ["mnist"], "archs": ["s"], "algos": ["tff"], "seeds": [0],
                         "settings": {"epochs": 1}}]}
    (workdir / "m.yaml").write_text(yaml.safe_dump(overlay))
    plan = snakemake(workdir, "-n", "--configfile", "m.yaml", bin_dir=bin_dir)
    assert ("download_data", "resources/data/mnist.ok") in planned_jobs(plan)
    assert "input: resources/data/mnist.ok" in plan.stdout  # the training job waits for the marker
    snakemake(workdir, "resources/data/mnist.ok", "--cores", "1", "--configfile", "m.yaml", bin_dir=bin_dir)
    assert (workdir / "resources/data/mnist.ok").exists()
    assert "mnist: 20 train / 10 test images" in (workdir / "logs/download/mnist.log").read_text()


def test_a_workstation_runs_one_job_per_gpu(workflow_copy, tmp_path):
    """`--resources gpu=4` on a machine with four GPUs (a fake device list: this machine has none): four training
    jobs at once, each pinned to a device of its own, recorded in run.json and shown by `trifecta status`."""
    workdir, bin_dir = workflow_copy
    overlay = {"resources": {"gpu": 1, "threads": 1}, "preflight": {"activate": False},
               "runs": [{"name": "four", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff"],
                         "seeds": [0, 1, 2, 3],
                         "settings": {"epochs": 1, "width": 0.0625, "subset_train": 512, "subset_test": 100}}]}
    (workdir / "gpus.yaml").write_text(yaml.safe_dump(overlay))
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "TRIFECTA_GPU_POOL": str(tmp_path / "pool")}
    snakemake(workdir, "train_all", "--cores", "4", "--resources", "gpu=4", "--configfile", "gpus.yaml",
              bin_dir=bin_dir, env=env)
    records = [json.loads((workdir / f"results/train/mnist5k/s/tff/seed{s}/run.json").read_text()) for s in range(4)]
    assert sorted(r["gpu_slots"]["devices"][0] for r in records) == ["0", "1", "2", "3"]
    status = subprocess.run([sys.executable, "-m", "trifecta.cli", "status", "--configfile", "gpus.yaml"], cwd=workdir,
                            capture_output=True, text=True, check=True).stdout
    assert sorted(re.findall(r"complete .* GPU (\d) ", status)) == ["0", "1", "2", "3"], status


# The copy's `trifecta train` for the test below: it takes its GPU slot through the package's own gpus.claim, as the
# real command does, then waits until all eight jobs hold theirs (or 120 s pass), so the test sees jobs at once.
CLAIM_AND_WAIT = """\
import json, sys, time
from pathlib import Path
from trifecta.operations import gpus

if sys.argv[1] != "train":  # every other command is the real one
    from trifecta.real_cli import main
    sys.exit(main(sys.argv[1:]))
args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]
out = Path(opt("--out"))
out.mkdir(parents=True, exist_ok=True)
claim = gpus.claim(int(opt("--gpus")), int(opt("--slots-per-gpu")))
barrier = out.parent / "barrier"
barrier.mkdir(exist_ok=True)
(barrier / out.name).write_text(json.dumps(claim.describe()))
deadline = time.time() + 120
while len(list(barrier.iterdir())) < 8 and time.time() < deadline:
    time.sleep(0.2)
(out / "metrics.json").write_text(json.dumps({"together": len(list(barrier.iterdir()))}))
"""


def test_two_runs_share_each_gpu_of_a_workstation(workflow_copy, tmp_path):
    """The README's recipe for two runs per GPU: `resources.slots_per_gpu: 2`, `--resources gpu=8` on four (fake)
    devices and cores for eight jobs: Snakemake starts eight training jobs at once, each pinned to a slot of its
    own, two per device."""
    workdir, bin_dir = workflow_copy
    (workdir / "src/trifecta/cli.py").rename(workdir / "src/trifecta/real_cli.py")
    (workdir / "src/trifecta/cli.py").write_text(CLAIM_AND_WAIT)
    overlay = {"resources": {"gpu": 1, "slots_per_gpu": 2, "threads": 1}, "preflight": {"activate": False},
               "runs": [{"name": "eight", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff"],
                         "seeds": list(range(8)), "settings": {"epochs": 1}}]}
    (workdir / "gpus.yaml").write_text(yaml.safe_dump(overlay))
    env = {"CUDA_VISIBLE_DEVICES": "0,1,2,3", "TRIFECTA_GPU_POOL": str(tmp_path / "pool")}
    snakemake(workdir, "train_all", "--cores", "8", "--resources", "gpu=8", "--configfile", "gpus.yaml",
              bin_dir=bin_dir, env=env, timeout=300)
    runs = workdir / "results/train/mnist5k/s/tff"
    assert all(json.loads((runs / f"seed{s}/metrics.json").read_text())["together"] == 8 for s in range(8))
    claims = [json.loads(path.read_text()) for path in (runs / "barrier").iterdir()]
    assert sorted((c["devices"][0], c["slots"][0]) for c in claims) == [(d, slot) for d in "0123" for slot in (0, 1)]
