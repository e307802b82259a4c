"""Dry runs of the workflow: the paper grid, config validation, and what reruns after which change."""

import ast
import dataclasses
import os
import shutil
import time

import pytest
import yaml

from tests.workflow.smk import (REPO, TINY_RUNS, copy_workflow, job_counts, make_bin, planned_jobs, read_config,
                                snakemake, write_config)
from trifecta import codehash
from trifecta.config import TrainConfig

# Training runs of the paper grid: Table 1 (11 cells; the 12th is tff from TFF/s), TFF/s and TFF/d on five
# datasets, FA/f, PEP/t and BP/d on five datasets, and SymBa ln/bn/none on the FCN for the figures; 3 seeds.
PAPER_RUNS = 3 * (11 + 5 + 5 + 5 + 5 + 5 + 3)


# ---- The paper grid ----

def test_paper_grid_plans_every_run_on_slurm(workflow_copy):
    workdir, bin_dir = workflow_copy
    result = snakemake(workdir, "--profile", "slurm", "-n", bin_dir=bin_dir)
    counts = job_counts(result)
    assert (counts["download_data"], counts["train_model"], counts["aggregate_runs"]) == (5, PAPER_RUNS, 1)
    jobs = planned_jobs(result)
    assert len({out for rule, out in jobs if rule == "train_model"}) == PAPER_RUNS
    text = result.stdout + result.stderr
    # TFF/d on SVHN: 10 min start-up + 500 epochs x 0.1 min x 1.5 = 85 min; every training job asks for a GPU.
    block = text[text.index("output: results/train/svhn/d/tff/seed0/metrics.json"):]
    assert "gpu=1, runtime=85" in block[:block.index("Shell command")]
    assert text.count("gpu=1") == PAPER_RUNS + counts["probe_layers"]  # probes may use a GPU too


def test_lint_is_clean(workflow_copy):
    workdir, bin_dir = workflow_copy
    result = snakemake(workdir, "--lint", bin_dir=bin_dir, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


def test_schema_settings_match_trainconfig():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert set(schema["$defs"]["settings"]["properties"]) == {f.name for f in dataclasses.fields(TrainConfig)}


def package_imports(module: str) -> set[str]:
    """Package files that `module` (e.g. "probe.py") imports, directly or through other package modules."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = codehash.PACKAGE_DIR / name
        tree = ast.parse((path / "__init__.py" if path.is_dir() else path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "trifecta":
                parts = node.module.split(".")
                names = parts[1:2] or [alias.name for alias in node.names]  # trifecta.x... or trifecta's x, y
                todo += [n + "/" if (codehash.PACKAGE_DIR / n).is_dir() else n + ".py" for n in names]
    return seen


@pytest.mark.parametrize("stage, modules", [("aggregate", ["aggregate.py"]), ("figures", ["figures.py"]),
                                            ("analysis", ["tables.py", "lineage.py", "audit.py"]),
                                            ("probe", ["probe.py"]), ("weights", ["weights.py"])])
def test_code_stages_are_the_modules_their_commands_import(stage, modules):
    # Training code reruns the training, and so everything after it; codehash.py's edits change the hashes.
    upstream = {f for f in package_imports("train.py") if f.startswith(codehash.STAGES["training"])}
    imported = set().union(*map(package_imports, modules)) - upstream - {"codehash.py"}
    assert set(codehash.STAGES[stage]) == imported


# ---- Validation ----

def plan_with(workdir, bin_dir, edit):
    config = read_config(workdir)
    edit(config)
    write_config(workdir, config)
    result = snakemake(workdir, "-n", bin_dir=bin_dir, check=False)
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize("edit, named", [
    (lambda c: c["runs"][0]["settings"].update(epoch=5), "'epoch' was unexpected"),
    (lambda c: c["runs"][0].update(seed=[0]), "'seed' was unexpected"),
    (lambda c: c["resources"].update(gpus=1), "'gpus' was unexpected"),
    (lambda c: c["runs"][0].update(datasets=["cifar11"]), "'cifar11' is not one of"),
    (lambda c: c["runs"][0]["settings"].update(epochs=0), "0 is less than the minimum of 1"),
    (lambda c: c["runs"][0]["settings"].update(lr_schedule="1e-3"), "'1e-3' does not match"),
    (lambda c: c["runs"][0].update(algos=["symba-xx"]), "'symba-xx' does not match"),
    (lambda c: c.pop("probe"), "'probe' is a required property"),
])
def test_wrong_key_or_value_stops_with_its_name(workflow_copy, edit, named):
    code, output = plan_with(*workflow_copy, edit)
    assert code != 0
    assert named in output


def test_duplicate_run_with_other_settings_names_both_entries(workflow_copy):
    def edit(config):
        config["runs"].append({"name": "longer_vff", "datasets": ["cifar10"], "archs": ["s"], "algos": ["vff"],
                               "seeds": [1], "settings": {"epochs": 200}})
    code, output = plan_with(*workflow_copy, edit)
    assert code != 0
    assert "run cifar10/s/vff/seed1 is in grid entries 'table1_ablation'" in output
    assert "and 'longer_vff'" in output


def test_duplicate_run_with_same_settings_is_one_run(workflow_copy):
    workdir, bin_dir = workflow_copy
    config = read_config(workdir)
    table1 = config["runs"][0]
    config["runs"].append({**table1, "name": "again", "algos": ["vff"], "seeds": [0]})
    write_config(workdir, config)
    assert job_counts(snakemake(workdir, "-n", bin_dir=bin_dir))["train_model"] == PAPER_RUNS


def test_second_name_for_an_algorithm_is_refused(workflow_copy):
    code, output = plan_with(*workflow_copy, lambda c: c["runs"][0]["algos"].append("symba-bn-olu"))
    assert code != 0
    assert "lists algo 'symba-bn-olu'; write 'tff'" in output


# ---- What reruns when (a tiny grid, completed with a fake `trifecta train`) ----

@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    """A finished tiny grid: 5 runs in two entries, their tables, and Snakemake's metadata about them."""
    root = tmp_path_factory.mktemp("completed")
    workdir = copy_workflow(root / "wf")
    bin_dir = make_bin(root / "bin", fake_trifecta=True)
    config = read_config(workdir)
    config["runs"] = TINY_RUNS
    for stage in ("probe", "figures", "audit"):  # they need real runs: see test_workflow_run.py
        config[stage]["activate"] = False
    write_config(workdir, config)
    snakemake(workdir, "--cores", "2", bin_dir=bin_dir)
    return workdir, bin_dir


@pytest.fixture
def done(completed, tmp_path):
    """A private copy of the completed grid (metadata and modification times included)."""
    workdir, bin_dir = completed
    copy = tmp_path / "wf"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, bin_dir


def rerun_plan(workdir, bin_dir, *args):
    result = snakemake(workdir, "-n", *args, bin_dir=bin_dir)
    return sorted(planned_jobs(result)), result.stdout + result.stderr


def train_job(run):
    return ("train_model", f"results/train/{run}/metrics.json")


AGGREGATE = ("aggregate_runs", "results/tables/runs.csv, results/tables/layers.csv")


def assert_reruns(jobs, runs, tables=True):
    """Exactly these training runs rerun; then the tables and what is built from them (if `tables`), no more."""
    assert sorted(job for job in jobs if job[0] in ("train_model", "download_data")) == sorted(map(train_job, runs))
    downstream = [job for job in jobs if job[0] not in ("train_model", "download_data")]
    assert (AGGREGATE in downstream) == tables
    if not tables:
        assert downstream == []
ALL_RUNS = ["mnist5k/s/tff/seed0", "mnist5k/s/tff/seed1", "mnist5k/s/vff/seed0", "mnist5k/s/vff/seed1",
            "mnist5k/t/pep/seed0"]


def test_completed_grid_has_nothing_to_do(done):
    jobs, output = rerun_plan(*done)
    assert jobs == []
    assert "Nothing to be done" in output


def test_touch_reruns_nothing(done):
    workdir, bin_dir = done
    time.sleep(0.05)
    for folder in ("results", "resources", "src"):
        for path in (workdir / folder).rglob("*"):
            os.utime(path)
    assert rerun_plan(workdir, bin_dir)[0] == []


def test_changed_setting_reruns_its_entry_and_the_tables(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["runs"][0]["settings"]["width"] = 0.125  # entry `pair`: 4 runs
    write_config(workdir, config)
    jobs, output = rerun_plan(workdir, bin_dir)
    assert_reruns(jobs, ALL_RUNS[:4])
    assert "Params have changed since last execution" in output
    assert "before: '--set epochs=2 --set eval_epochs=1,2 --set width=0.0625'" in output


def test_changed_setting_of_one_run_entry(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["runs"][1]["settings"]["epochs"] = 4  # entry `single`: 1 run
    write_config(workdir, config)
    assert_reruns(rerun_plan(workdir, bin_dir)[0], ["mnist5k/t/pep/seed0"])


def test_unused_keys_rerun_nothing(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["resources"].update(threads=3, mem_mb=999, startup_minutes=1, gpu=2)
    config["resources"]["minutes_per_epoch"]["s"] = 7
    config["runs"][0]["resources"] = {"minutes_per_epoch": 2}
    config["runs"][0]["name"] = "renamed"
    write_config(workdir, config)
    assert rerun_plan(workdir, bin_dir)[0] == []


def test_moved_checkpoint_dir_reruns_training(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["checkpoint_dir"] = "/scratch/checkpoints"
    write_config(workdir, config)
    assert_reruns(rerun_plan(workdir, bin_dir)[0], ALL_RUNS)


def test_added_run_trains_only_itself(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["runs"][1]["seeds"] = [0, 5]
    write_config(workdir, config)
    assert_reruns(rerun_plan(workdir, bin_dir)[0], ["mnist5k/t/pep/seed5"])


def test_training_code_edit_reruns_all_training(done):
    workdir, bin_dir = done
    with open(workdir / "src/trifecta/models.py", "a") as f:
        f.write("\n# an edit\n")
    assert_reruns(rerun_plan(workdir, bin_dir)[0], ALL_RUNS)


def test_aggregation_code_edit_reruns_only_the_tables(done):
    workdir, bin_dir = done
    with open(workdir / "src/trifecta/aggregate.py", "a") as f:
        f.write("\n# an edit\n")
    assert_reruns(rerun_plan(workdir, bin_dir)[0], [])


def test_edit_outside_any_stage_reruns_nothing(done):
    workdir, bin_dir = done
    with open(workdir / "src/trifecta/cli.py", "a") as f:
        f.write("\n# an edit\n")
    assert rerun_plan(workdir, bin_dir)[0] == []


def test_forced_run_reruns_it_and_the_tables(done):
    workdir, bin_dir = done
    jobs, _ = rerun_plan(workdir, bin_dir, "--forcerun", "results/train/mnist5k/s/vff/seed1/metrics.json")
    assert_reruns(jobs, ["mnist5k/s/vff/seed1"])


def test_deleted_result_is_rebuilt_by_train_all(done):
    # A missing result behind up-to-date tables is not rebuilt by default (Snakemake treats it like a
    # temporary file); the train_all target asks for every run.
    workdir, bin_dir = done
    (workdir / "results/train/mnist5k/s/vff/seed1/metrics.json").unlink()
    assert rerun_plan(workdir, bin_dir)[0] == []
    result = snakemake(workdir, "-n", "train_all", bin_dir=bin_dir)
    assert planned_jobs(result) == [train_job("mnist5k/s/vff/seed1")]
