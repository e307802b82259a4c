"""A finished grid stays true to its results: the plain `snakemake` shows a lost run directory again from the store
and re-checks results/ with the audit every time, so results/audit.txt never says PASSED of results that fail.
Real CPU runs of a tiny grid (two TFF/s runs) with its tables, lineage, audit and crate."""

import os
import shutil

import pytest
import yaml

from tests.workflow.smk import copy_workflow, make_bin, planned_jobs, snakemake

TINY = {
    "resources": {"gpu": 0, "threads": 1, "mem_mb": 2000},
    "preflight": {"activate": False},
    "runs": [{"name": "tiny", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff"], "seeds": [0, 1],
              "settings": {"epochs": 1, "width": 0.0625, "batch_size": 100, "subset_train": 500,
                           "subset_test": 200}}],
    "tables": {"stand_in": {"table1": {"dataset": {"cifar10": "mnist5k"}, "epoch": {"100": 1}}}},
    "probe": {"activate": False},
    "figures": {"activate": False},
}
RUN = "results/train/mnist5k/s/tff/seed0"
FILES = ("metrics.json", "run.json", "eval.csv", "ensemble.csv", "steps.csv")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("kept")
    workdir = copy_workflow(root / "wf")
    bin_dir = make_bin(root / "bin")
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    plain(workdir, bin_dir)
    return workdir, bin_dir


@pytest.fixture
def done(finished, tmp_path):
    workdir, bin_dir = finished
    copy = tmp_path / "wf"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, bin_dir


def plain(workdir, bin_dir, check=True):
    return snakemake(workdir, "--cores", "2", "--configfile", "tiny.yaml", bin_dir=bin_dir, check=check)


def contents(run_dir) -> dict:
    return {name: (run_dir / name).read_bytes() for name in FILES}


def test_the_plain_command_on_finished_results_only_checks_them(done):
    workdir, bin_dir = done
    plan = snakemake(workdir, "-n", "--configfile", "tiny.yaml", bin_dir=bin_dir)
    assert planned_jobs(plan) == []  # the default target alone: it has no output
    report = (workdir / "results/audit.txt").stat().st_mtime_ns
    result = plain(workdir, bin_dir)
    assert "PASSED: 0 failures" in result.stdout + result.stderr
    assert (workdir / "results/audit.txt").stat().st_mtime_ns == report  # the same report keeps its date


@pytest.mark.parametrize("lose", ["the run directory", "its metrics.json"])
def test_a_lost_run_directory_is_shown_again_by_the_plain_command(done, lose):
    workdir, bin_dir = done
    run_dir = workdir / RUN
    before = contents(run_dir)
    if lose == "the run directory":
        shutil.rmtree(run_dir)
    else:
        (run_dir / "metrics.json").unlink()
    plan = snakemake(workdir, "-n", "--configfile", "tiny.yaml", bin_dir=bin_dir)
    assert ("train_model", f"{RUN}/metrics.json") in planned_jobs(plan)
    plain(workdir, bin_dir)
    assert contents(run_dir) == before
    log = (workdir / "logs/train/mnist5k/s/tff/seed0.log").read_text()  # the job's log: no epoch trained
    assert "without training" in log and "epoch 1/1: loss" not in log
    assert "PASSED" in (workdir / "results/audit.txt").read_text()


def test_swapped_run_directories_fail_the_plain_command_and_lose_the_report(done):
    """Swapped by hand, modification times kept: Snakemake sees nothing to do, the audit sees other files."""
    workdir, bin_dir = done
    one, two = workdir / RUN, workdir / RUN.replace("seed0", "seed1")
    os.rename(one, workdir / "swap")
    os.rename(two, one)
    os.rename(workdir / "swap", two)
    result = plain(workdir, bin_dir, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"run mnist5k/s/tff/seed0: {RUN}/metrics.json: sha256 " in output
    assert "delete it and run the same `snakemake` command" in output
    assert not (workdir / "results/audit.txt").exists()
    shutil.rmtree(one)  # the remedy it names
    shutil.rmtree(two)
    plain(workdir, bin_dir)
    assert "PASSED" in (workdir / "results/audit.txt").read_text()


def test_a_target_short_of_the_analysis_leaves_no_report_of_older_results(done):
    """`train_all` after a setting changed retrains the runs but audits nothing: the report goes."""
    workdir, bin_dir = done
    config = yaml.safe_load((workdir / "tiny.yaml").read_text())
    config["runs"][0]["settings"]["subset_test"] = 100
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "--cores", "2", "train_all", "--configfile", "tiny.yaml", bin_dir=bin_dir)
    assert "results/audit.txt removed" in result.stdout + result.stderr
    assert not (workdir / "results/audit.txt").exists()
    plain(workdir, bin_dir)
    assert "PASSED" in (workdir / "results/audit.txt").read_text()


def test_a_run_in_no_table_is_audited_too(done):
    """A run the config adds that no table, probe or figure reads: its numbers are in runs.csv, so the audit
    covers it, and the plain command that trains it audits again (it once left the report removed and failed)."""
    workdir, bin_dir = done
    config = yaml.safe_load((workdir / "tiny.yaml").read_text())
    config["runs"].append({**config["runs"][0], "name": "extra", "algos": ["symba-none"], "seeds": [0]})
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(config))
    plain(workdir, bin_dir)
    report = (workdir / "results/audit.txt").read_text()
    assert "PASSED" in report and ": 3 runs," in report, report
    extra = workdir / "results/train/mnist5k/s/symba-none/seed0"
    eval_csv = (extra / "eval.csv").read_text().replace("0.", "0.9", 1)
    os.chmod(extra / "eval.csv", 0o644)
    (extra / "eval.csv").write_text(eval_csv)
    result = plain(workdir, bin_dir, check=False)
    assert result.returncode != 0
    assert f"run mnist5k/s/symba-none/seed0: {extra.relative_to(workdir)}/eval.csv: sha256 " in \
        result.stdout + result.stderr
    assert not (workdir / "results/audit.txt").exists()
