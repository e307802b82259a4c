"""The grid of a workflow config: its runs, their settings and runtimes, and the checks made while planning."""

import pytest
import yaml

from tests.workflow.smk import REPO
from trifecta.planning.grid import Grid, GridError
from trifecta.planning.configfile import load_config, schema_problem
from trifecta.planning.paper import FIGURES
from trifecta.training.settings import render_settings
from trifecta.planning.runs import Run

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def paper_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def with_runs(*entries, **blocks) -> dict:
    return {**paper_config(), "runs": list(entries), **blocks}


def entry(name="e", algos=("tff",), archs=("s",), datasets=("mnist5k",), seeds=(0,), **settings):
    return {"name": name, "datasets": list(datasets), "archs": list(archs), "algos": list(algos),
            "seeds": list(seeds), "settings": {"epochs": 10, **settings}}


def test_the_paper_grid():
    grid = Grid.from_config(paper_config())
    assert len(grid.runs) == 117
    tff_d = Run("svhn", "d", "tff", 0)
    assert grid.settings(tff_d).lr_schedule == [(0, 1e-3), (200, 5e-4), (400, 1e-4)]
    pep = grid.settings(Run("mnist", "t", "pep", 0))
    assert (pep.batch_size, pep.lr_at(0), pep.augment) == (64, 0.1, False)  # PEPITA's own defaults, MNIST rates
    assert [r.seed for r in grid.select(dataset="cifar10", arch="f", algo="symba-bn")] == [0, 1, 2]
    assert len(grid.figure_job("fig8").runs) == 9 and grid.figure_job("fig11") is None


def test_load_config_merges_as_snakemake(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"runs": [1, 2], "resources": {"gpu": 1, "m": {"s": 1, "d": 2}},
                                                     "probe": {"a": 1}}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"runs": [3], "resources": {"gpu": 0, "m": {"d": 5}}}))
    assert load_config([tmp_path / "a.yaml", tmp_path / "b.yaml"]) == {
        "runs": [3], "resources": {"gpu": 0, "m": {"s": 1, "d": 5}}, "probe": {"a": 1}}
    (tmp_path / "c.yaml").write_text("- a list\n")
    with pytest.raises(GridError, match="c.yaml: not a YAML mapping"):
        load_config([tmp_path / "c.yaml"])


@pytest.mark.parametrize("config, message", [
    (with_runs(entry(eval_epochs=[20])),
     "grid entry 'e' (runs[0]), run mnist5k/s/tff: settings.eval_epochs = [20]: each must be in 1..epochs=10"),
    (with_runs(entry(algos=["pep"], archs=["s"])), "algorithm 'pep' supports architectures t, not 's'"),
    (with_runs(entry(algos=["symba-bn-olu"])), "algo 'symba-bn-olu': write 'tff'"),
    (with_runs(entry(), entry(epochs=20)), "config: two grid entries in `runs` are named 'e'"),
    (with_runs(entry(), {**entry(name="f"), "settings": {"epochs": 20}}),
     "run mnist5k/s/tff/seed0 is in grid entries 'e' (--set epochs=10) and 'f' (--set epochs=20)"),
    (with_runs(entry(algos=["fa"], archs=["f"]), probe={"activate": True, "dataset": "mnist5k", "arch": "f",
                                                        "algos": ["fa"], "epoch": None}),
     "probe.algos: 'fa' is not a Forward-Forward algorithm"),
    (with_runs(entry(), figures={"activate": True, "fig10": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"],
                                                             "layers": [7]}}),
     "figures.fig10.layers: layer 7, but arch 's' has 6 layers"),
    (with_runs(entry(), figures={"activate": True, "fig10": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"],
                                                             "epoch": 5}}),
     "figures.fig10: epoch 5 is not in snapshot_epochs [10] of run mnist5k/s/tff/seed0"),
    (with_runs(entry(), figures={"activate": True, "fig10": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"],
                                                             "clamp": -1}}),
     "config: figures.fig10.clamp: -1: must be a positive number"),
    (with_runs(entry(), figures={"activate": True, "fig6": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"],
                                                            "epochs": 10}}),
     "config: figures.fig6.epochs: 10: must be a list of positive whole numbers"),
    (with_runs(entry(), figures={"activate": False, "fig1": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"],
                                                             "epoch": 10}}),
     "config: figures.fig1.epoch: fig1 takes no such option (it takes: none)"),
])
def test_a_run_that_cannot_run_is_named(config, message):
    with pytest.raises(GridError) as err:
        Grid.from_config(config)
    assert message in str(err.value)


def test_schema_problems_name_the_key_and_what_is_allowed():
    config = with_runs(entry(init="he"))
    assert schema_problem(config, SCHEMA) is None  # settings are the package's to check
    assert "settings.init = 'he': must be one of pytorch, kaiming_relu" in str(
        pytest.raises(GridError, Grid.from_config, config).value)
    config["runs"][0]["name"] = "Bad Name"
    assert schema_problem(config, SCHEMA).startswith("config: runs[0].name (grid entry 'Bad Name'): 'Bad Name' does "
                                                     "not match")
    config["runs"][0]["name"] = "e"
    del config["probe"]
    assert "config: top level: 'probe' is a required property" in schema_problem(config, SCHEMA)
    assert schema_problem(paper_config(), SCHEMA) is None


def test_settings_render_sorted_and_quoted():
    assert render_settings({"lr_schedule": "0:1e-3,150:1e-4", "augment": False, "eval_epochs": [10, 100],
                            "epochs": 200}) == ("--set augment=false --set epochs=200 --set eval_epochs=10,100 "
                                                "--set lr_schedule=0:1e-3,150:1e-4")


def check(config) -> str:
    """What planning says of a config: its schema problem or its grid error ("" when it plans)."""
    problem = schema_problem(config, SCHEMA)
    if problem:
        return problem
    try:
        Grid.from_config(config)
    except GridError as err:
        return str(err)
    return ""


@pytest.mark.parametrize("edit, named", [
    (lambda c: c["runs"][0]["settings"].update(epoch=5), "settings.epoch = 5: no such setting; valid settings: alpha,"),
    (lambda c: c["runs"][0].update(seed=[0]), "'seed' was unexpected"),
    (lambda c: c["resources"].update(gpus=1), "'gpus' was unexpected"),
    (lambda c: c["runs"][0].update(datasets=["cifar11"]), "unknown dataset 'cifar11'; choose one of: mnist, fmnist"),
    (lambda c: c["runs"][0]["settings"].update(epochs=0), "settings.epochs = 0: must be >= 1"),
    (lambda c: c["runs"][0]["settings"].update(lr_schedule="1e-3"), "settings.lr_schedule = '1e-3': is malformed"),
    (lambda c: c["runs"][0].update(algos=["symba-xx"]), "unknown algorithm 'symba-xx'; use a preset"),
    (lambda c: c["probe"].update(arch="x"), "config: probe: unknown architecture 'x'; choose one of: s, d, f, t"),
    (lambda c: c.pop("probe"), "'probe' is a required property"),
    (lambda c: c["runs"][0]["algos"].append("symba-bn-olu"),
     "grid entry 'table1_ablation' (runs[0]): algo 'symba-bn-olu': write 'tff'"),
    (lambda c: c["runs"].append({"name": "longer_vff", "datasets": ["cifar10"], "archs": ["s"], "algos": ["vff"],
                                 "seeds": [1], "settings": {"epochs": 200}}),
     "run cifar10/s/vff/seed1 is in grid entries 'table1_ablation'"),
])
def test_a_wrong_key_or_value_of_the_paper_config_is_named(edit, named):
    config = paper_config()
    edit(config)
    assert named in check(config)


def test_a_run_listed_twice_with_the_same_settings_is_one_run():
    config = paper_config()
    config["runs"].append({**config["runs"][0], "name": "again", "algos": ["vff"], "seeds": [0]})
    assert check(config) == "" and len(Grid.from_config(config).runs) == 117


def test_a_figure_or_probe_entry_that_plans_nothing_says_so_in_one_line():
    config = with_runs(entry(algos=("tff", "symba-ln")))
    config["figures"] = {"activate": True, "fig3": {"dataset": "mnist5k", "arch": "d", "algos": ["tff"]},
                         "fig1": {"dataset": "mnist5k", "arch": "s", "algos": ["symba-ln", "symba-bn"]},
                         "fig4": {"dataset": "mnist5k", "arch": "s", "algos": ["tff"]}}
    config["probe"] = {**config["probe"], "dataset": "mnist5k", "arch": "f", "algos": ["symba-ln"], "epoch": None}
    grid = Grid.from_config(config)
    assert grid.notes == [
        "probe: no run of mnist5k/f with algos symba-ln is in the grid: no probes, no Figure 8",
        "figures.fig3: no run of mnist5k/d/tff in the grid: not drawn",
        "figures.fig1: no run of mnist5k/s/symba-bn in the grid: not drawn"]


def test_a_figures_job_is_its_entry_with_the_declared_defaults():
    """One translation of a figure's entry (planning/figurejob.py): its runs, options (a default where the entry
    leaves one out), data files and command options, for the rules and interim alike."""
    config = paper_config()
    algos = ["symba-ln", "symba-bn", "symba-none"]
    job = Grid.from_config(config).figure_job("fig10")
    weights = [f"results/weights/fig10/{algo}.npz" for algo in algos]
    assert [run.id for run in job.runs[:2]] == ["cifar10/f/symba-ln/seed0", "cifar10/f/symba-ln/seed1"]
    assert job.args() == {"dataset": "cifar10", "arch": "f", "algos": algos, "show-layers": [6], "epoch": 100,
                          "clamp": 0.3, "weights": weights}
    assert job.export_args() == {"dataset": "cifar10", "arch": "f", "layer": 6, "epoch": 100}
    for key in ("layers", "epoch", "clamp"):
        del config["figures"]["fig10"][key]
    config["figures"]["fig6"]["epochs"] = None
    grid = Grid.from_config(config)
    job = grid.figure_job("fig10")
    assert job.options == {"layers": [], "epoch": None, "clamp": 0.3}  # declared once, in planning/paper.py
    assert job.export_args() == {"dataset": "cifar10", "arch": "f", "layer": 6, "epoch": None}  # f's last layer
    assert grid.figure_job("fig6").args() == {"dataset": "cifar10", "arch": "d", "algos": ["tff"], "epochs": []}
    assert grid.figure_job("fig3").inputs == {"epoch-means": "results/figures/data/fig3.epochs.csv",
                                              "steps": "results/figures/data/fig3.steps.csv"}
    assert grid.figure_job("fig8") is not None
    config["probe"]["activate"] = False  # Figure 8 draws probes: without them, no job
    assert Grid.from_config(config).figure_job("fig8") is None
    config["figures"]["activate"] = False
    assert [name for name in FIGURES if Grid.from_config(config).figure_job(name)] == []


def test_a_yaml_syntax_error_in_a_config_file_names_its_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("runs:\n  - name: x\n    seeds: [0\n")
    with pytest.raises(GridError, match=r"bad.yaml, line 4, column \d+: not valid YAML"):
        load_config([tmp_path / "bad.yaml"])
