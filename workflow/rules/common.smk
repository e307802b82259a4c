"""Config validation, the run grid, code hashes and input functions, shared by the stages."""

import importlib.util
import itertools
import json
import math
import os
import shlex
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


# ---- Code hashes: Snakemake does not see edits inside src/, so rules carry a hash of their code as params ----


def load_codehash():
    """src/trifecta/codehash.py of this checkout, loaded by path (no torch import while planning)."""
    path = Path(workflow.basedir) / "src" / "trifecta" / "codehash.py"
    spec = importlib.util.spec_from_file_location("trifecta_codehash", path)
    codehash = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(codehash)
    return codehash


CODEHASH = load_codehash()
# Content hash of the package modules each stage depends on (codehash.STAGES), computed once per invocation.
CODE_HASHES = {stage: CODEHASH.stage_hash(stage) for stage in CODEHASH.STAGES}


# ---- The grid ----

TRAIN_METRICS = "results/train/{dataset}/{arch}/{algo}/seed{seed}/metrics.json"
DATA_MARKER = os.path.join(config["data_dir"], "{dataset}.ok")  # written once the dataset is there
ALIASES = {"symba-bn-olu": "tff", "ftl2-ln": "vff"}  # a second name would train the same runs twice


def format_setting(value):
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def render_settings(settings):
    """`--set key=value` arguments, sorted so that the params (and with them the rerun decision) are stable."""
    return " ".join(
        f"--set {shlex.quote(f'{key}={format_setting(value)}')}" for key, value in sorted(settings.items())
    )


def run_label(run):
    dataset, arch, algo, seed = run
    return f"{dataset}/{arch}/{algo}/seed{seed}"


def build_grid(entries):
    """Map each run (dataset, arch, algo, seed) to its grid entry; a run in two entries needs equal settings."""
    runs, names = {}, set()
    for entry in entries:
        name = entry["name"]
        if name in names:
            raise WorkflowError(f"config: two grid entries in `runs` are named '{name}'")
        names.add(name)
        for algo in entry["algos"]:
            if algo in ALIASES:
                raise WorkflowError(
                    f"config: grid entry '{name}' lists algo '{algo}'; write '{ALIASES[algo]}' "
                    "(one name per algorithm, so that one run serves every table and figure)"
                )
        for run in itertools.product(entry["datasets"], entry["archs"], entry["algos"], entry["seeds"]):
            first = runs.setdefault(run, entry)
            mine, theirs = render_settings(entry["settings"]), render_settings(first["settings"])
            if mine != theirs:
                raise WorkflowError(
                    f"config: run {run_label(run)} is in grid entries '{first['name']}' "
                    f"({theirs}) and '{name}' ({mine}) with different settings; give it one set of settings"
                )
    return runs


RUNS = build_grid(config["runs"])


wildcard_constraints:
    dataset="|".join(sorted({run[0] for run in RUNS})),
    arch="|".join(sorted({run[1] for run in RUNS})),
    algo="|".join(sorted({run[2] for run in RUNS}, key=len, reverse=True)),
    seed=r"\d+",


# ---- Input functions ----


def get_final_output():
    """What `snakemake` builds by default; each stage adds its targets here."""
    return [
        "results/tables/runs.csv",
        "results/tables/layers.csv",
        *get_analysis_outputs(),
    ]


def get_run_metrics(**only):
    """metrics.json (presence = complete) of every run in the grid, or of those matching `only`
    (e.g. dataset="cifar10", algo="tff")."""
    paths = []
    for dataset, arch, algo, seed in RUNS:
        run = {"dataset": dataset, "arch": arch, "algo": algo, "seed": seed}
        if all(run[key] == value for key, value in only.items()):
            paths.append(TRAIN_METRICS.format(**run))
    return paths


def get_run_entry(wildcards):
    key = (wildcards.dataset, wildcards.arch, wildcards.algo, int(wildcards.seed))
    if key not in RUNS:
        raise WorkflowError(f"run {run_label(key)} is not in the grid (`runs` in the config)")
    return RUNS[key]


def get_train_settings(wildcards):
    """Only this run's settings, so that editing another entry does not rerun it."""
    return render_settings(get_run_entry(wildcards)["settings"])


def get_train_runtime(wildcards, attempt):
    """Minutes: start-up + epochs x per-epoch estimate x dataset scale, times the attempt (retries get longer)."""
    entry, res = get_run_entry(wildcards), config["resources"]
    per_epoch = entry.get("resources", {}).get("minutes_per_epoch", res["minutes_per_epoch"][wildcards.arch])
    epochs = entry["settings"]["epochs"]
    minutes = res["startup_minutes"] + epochs * per_epoch * res["dataset_scale"][wildcards.dataset]
    return math.ceil(minutes * attempt)


def get_train_mem_mb(wildcards):
    return get_run_entry(wildcards).get("resources", {}).get("mem_mb", config["resources"]["mem_mb"])


# ---- Analysis stages: tables, probes, figures, audit ----


# tables.smk
def get_analysis_outputs():
    """Every final output of the analysis stage under the current config: tables, probes, figures, audit."""
    outputs = expand("results/tables/table{n}.{ext}", n=[1, 2, 3], ext=["csv", "md", "tex", "html"])
    if get_probe_tables():
        outputs.append("results/tables/probe.csv")
    outputs += expand("results/figures/{fig}.{ext}", fig=get_configured_figures(), ext=["png", "pdf"])
    if config["audit"]["activate"]:
        outputs.append("results/audit.txt")
    return outputs


def get_stand_in():
    """The `tables: stand_in:` mapping as JSON for `trifecta tables --stand-in`."""
    return json.dumps(config["tables"]["stand_in"], sort_keys=True)


def get_paper_values():
    """The transcribed paper values, relative to the working directory (a moved checkout reruns nothing)."""
    return os.path.relpath(Path(workflow.basedir) / "src" / "trifecta" / "paper_values.csv")


# probe.smk
def get_probe_runs():
    """metrics.json of the runs to probe: probe.dataset x probe.arch x probe.algos, every seed in the grid."""
    probe = config["probe"]
    if not probe["activate"]:
        return []
    return [
        path
        for algo in probe["algos"]
        for path in get_run_metrics(dataset=probe["dataset"], arch=probe["arch"], algo=algo)
    ]


def get_probe_tables():
    """Per-run probe tables, one per run to probe (results/probe/{dataset}/{arch}/{algo}/seed{seed}.csv)."""
    return [
        "results/probe/{}/{}/{}/{}.csv".format(*Path(path).parts[-5:-1])
        for path in get_probe_runs()
    ]


def get_probe_settings():
    """`trifecta probe` options from the `probe:` block (only these: editing them reruns the probes)."""
    probe = config["probe"]
    epoch = "" if probe["epoch"] is None else f"--epoch {probe['epoch']} "
    return (
        f"{epoch}--epochs {probe['epochs']} --hidden {probe['hidden']} --lr {probe['lr']} "
        f"--batch-size {probe['batch_size']}"
    )


# figures.smk
FIGURES = [f"fig{n}" for n in range(1, 11)]


def get_configured_figures():
    """Names of the figures to make: activated, specified, and every run they need is in the grid."""
    figures = config["figures"]
    if not figures["activate"]:
        return []
    made = []
    for name in FIGURES:
        spec = figures.get(name)
        if not spec or not all(
            get_run_metrics(dataset=spec["dataset"], arch=spec["arch"], algo=algo)
            for algo in spec["algos"]
        ):
            continue
        if name == "fig8" and not is_probed(spec):
            continue
        made.append(name)
    return made


def is_probed(spec):
    """Whether the probe block covers a figure's runs (Figure 8 plots the probe table)."""
    probe = config["probe"]
    return (
        probe["activate"]
        and (probe["dataset"], probe["arch"]) == (spec["dataset"], spec["arch"])
        and set(spec["algos"]) <= set(probe["algos"])
    )


def get_weight_files(wildcards):
    return expand("results/weights/{fig}/{algo}.npz", fig=wildcards.fig, algo=config["figures"][wildcards.fig]["algos"])


def get_figure_inputs(wildcards):
    spec = config["figures"][wildcards.fig]
    inputs = {
        "runs": "results/tables/runs.csv",
        "layers": "results/tables/layers.csv",
        "metrics": [
            path
            for algo in spec["algos"]
            for path in get_run_metrics(dataset=spec["dataset"], arch=spec["arch"], algo=algo)
        ],
    }
    if wildcards.fig == "fig8":
        inputs["probe"] = "results/tables/probe.csv"
    if wildcards.fig == "fig10":
        inputs["weights"] = get_weight_files(wildcards)
    return inputs


def get_figure_args(wildcards):
    """`trifecta figure` options from the figure's spec in `figures:`."""
    spec = config["figures"][wildcards.fig]
    args = f"--dataset {spec['dataset']} --arch {spec['arch']} --algos {' '.join(spec['algos'])}"
    if spec.get("epochs"):
        args += " --epochs " + " ".join(map(str, spec["epochs"]))
    if spec.get("layers"):
        args += " --show-layers " + " ".join(map(str, spec["layers"]))
    if spec.get("epoch") is not None:
        args += f" --epoch {spec['epoch']}"
    if spec.get("clamp") is not None:
        args += f" --clamp {spec['clamp']}"
    if wildcards.fig == "fig8":
        args += " --probe results/tables/probe.csv"
    if wildcards.fig == "fig10":
        args += " --weights " + " ".join(get_weight_files(wildcards))
    return args


def get_figure_caption(wildcards):
    """workflow/report/figN.rst, shown in the report through the template ../report/figure.rst."""
    return (Path(workflow.basedir) / "workflow" / "report" / f"{wildcards.fig}.rst").read_text()


def get_weight_args(wildcards):
    spec = config["figures"][wildcards.fig]
    layer = spec["layers"][-1] if spec.get("layers") else 6
    epoch = "" if spec.get("epoch") is None else f" --epoch {spec['epoch']}"
    return f"--dataset {spec['dataset']} --arch {spec['arch']} --layer {layer}{epoch}"


# audit.smk
def get_lineage_fragments():
    fragments = ["results/tables/tables.lineage.json"]
    if get_probe_tables():
        fragments.append("results/tables/probe.lineage.json")
    fragments += expand("results/figures/{fig}.lineage.json", fig=get_configured_figures())
    return fragments
