"""Config validation, the run grid, code hashes and input functions, shared by the stages."""

import hashlib
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The torch-free modules of this checkout's package (names, settings, the grid, code hashes): planning checks
# every run with the package's own validation and never imports torch.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))
from trifecta import codehash, paper, registry  # noqa: E402
from trifecta.grid import Grid, GridError, render_settings, schema_problem  # noqa: E402
from trifecta.registry import Run  # noqa: E402

try:
    validate(config, schema="../schemas/config.schema.yaml")  # fills in the schema's defaults
except WorkflowError:  # its message is the whole schema: name the key, the value and what is allowed instead
    schema = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"
    raise WorkflowError(schema_problem(config, schema) or "config: does not match the schema") from None
try:
    GRID = Grid.from_config(config)
except GridError as err:
    raise WorkflowError(str(err)) from None
if workflow.is_main_process:  # not again in every job
    for note in GRID.notes:
        print(f"note: config: {note}", file=sys.stderr)


# ---- Code hashes: Snakemake does not see edits inside src/, so rules carry a hash of their code as params ----

# Content hash of the package modules each stage depends on (codehash.STAGES), computed once per invocation.
CODE_HASHES = {stage: codehash.stage_hash(stage) for stage in codehash.STAGES}


# ---- The grid ----

TRAIN_DIR = registry.TRAIN_DIR
RUN_ID = registry.RUN_ID  # dataset/arch/algo/seedN: the wildcards of every per-run rule
TRAIN_METRICS = f"{TRAIN_DIR}/{RUN_ID}/metrics.json"
PROBE_TABLE = f"results/probe/{RUN_ID}.csv"
DATA_MARKER = os.path.join(config["data_dir"], "{dataset}.ok")  # written once the dataset is there
PREFLIGHT = f"results/preflight/{CODE_HASHES['training'][:16]}.json"  # the selftest of this training code


wildcard_constraints:
    dataset="|".join(sorted({run.dataset for run in GRID.runs})),
    arch="|".join(sorted({run.arch for run in GRID.runs})),
    algo="|".join(sorted({run.algo for run in GRID.runs}, key=len, reverse=True)),
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
    return [TRAIN_METRICS.format(**vars(run)) for run in GRID.select(**only)]


def get_run(wildcards):
    run = Run(wildcards.dataset, wildcards.arch, wildcards.algo, int(wildcards.seed))
    if run not in GRID.runs:
        raise WorkflowError(f"run {run.id} is not in the grid (`runs` in the config)")
    return run


def get_train_inputs(wildcards):
    """The dataset's marker and, when the preflight is on, its report (ancient: its age never reruns a job)."""
    inputs = {"data": DATA_MARKER.format(dataset=wildcards.dataset)}
    if config["preflight"]["activate"]:
        inputs["preflight"] = ancient(PREFLIGHT)
    return inputs


def get_train_settings(wildcards):
    """Only this run's settings, so that editing another entry does not rerun it."""
    return render_settings(GRID.runs[get_run(wildcards)]["settings"])


def get_train_runtime(wildcards, attempt):
    """Minutes: start-up + epochs x per-epoch estimate x dataset scale, times the attempt (retries get longer)."""
    return GRID.runtime_minutes(get_run(wildcards), attempt)


def get_train_mem_mb(wildcards):
    return GRID.runs[get_run(wildcards)].get("resources", {}).get("mem_mb", config["resources"]["mem_mb"])


# ---- Analysis stages: tables, probes, figures, audit ----


# tables.smk
TABLES = ["table1", "table2", "table3"]
TABLE_FILES = ["csv", "md", "tex", "html"]


def get_analysis_outputs():
    """Every final output of the analysis stage under the current config: tables, probes, figures, audit."""
    outputs = expand("results/tables/{table}.{ext}", table=TABLES, ext=TABLE_FILES)
    outputs += ["results/tables/scorecard.csv", "results/tables/scorecard.md"]
    if get_probe_tables():
        outputs.append("results/tables/probe.csv")
    outputs += expand("results/figures/{fig}.{ext}", fig=get_configured_figures(), ext=["png", "pdf"])
    if config["audit"]["activate"]:
        outputs += ["results/audit.txt", "results/ro-crate-metadata.json"]
    return outputs


def get_stand_in(wildcards=None):
    """`tables: stand_in:` as JSON for `trifecta tables --stand-in`: one table's entry, or every table's."""
    stand_in = config["tables"]["stand_in"]
    if wildcards is not None:
        stand_in = {k: v for k, v in stand_in.items() if k == wildcards.table}
    return json.dumps(stand_in, sort_keys=True)


def get_table_runs(table):
    """The grid's runs that the cells of one table read (after stand-ins), every seed."""
    needed = paper.table_runs(table, config["tables"]["stand_in"])
    return [run for run in GRID.runs if (run.dataset, run.arch, run.algo) in needed]


def get_table_metrics(wildcards):
    return [TRAIN_METRICS.format(**vars(run)) for run in get_table_runs(wildcards.table)]


def get_table_configured(wildcards):
    return " ".join(run.id for run in get_table_runs(wildcards.table))


def get_paper_values():
    """The transcribed paper values, relative to the working directory (a moved checkout reruns nothing)."""
    return os.path.relpath(paper.PAPER_VALUES)


# interim.smk
def get_finished_runs():
    """metrics.json of the grid's runs that have one now (while planning): what the interim results read."""
    return [path for path in get_run_metrics() if os.path.exists(path)]


def get_finished_state():
    """A digest of the finished runs and their metrics.json's modification times: a run finishing (again)
    reruns `interim`."""
    state = {path: os.stat(path).st_mtime_ns for path in get_finished_runs()}
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def get_interim_figures():
    """`trifecta interim --figures` JSON: the figures drawn from the tidy tables whose runs have all finished."""
    finished = set(get_finished_runs())
    done = {}
    for name in FIGURES:
        runs = GRID.figure_runs(name)
        if name not in ("fig8", "fig10") and runs and all(TRAIN_METRICS.format(**vars(r)) in finished for r in runs):
            done[name] = config["figures"][name]
    return json.dumps(done, sort_keys=True)


# probe.smk
def get_probe_runs():
    """The runs to probe: probe.dataset x probe.arch x probe.algos, every seed in the grid."""
    probe = config["probe"]
    if not probe["activate"]:
        return []
    return [run for algo in probe["algos"] for run in GRID.select(dataset=probe["dataset"], arch=probe["arch"], algo=algo)]


def get_probe_tables():
    """Per-run probe tables, one per run to probe (PROBE_TABLE)."""
    return [PROBE_TABLE.format(**vars(run)) for run in get_probe_runs()]


def get_probe_settings():
    """`trifecta probe` options from the `probe:` block (only these: editing them reruns the probes)."""
    probe = config["probe"]
    epoch = "" if probe["epoch"] is None else f"--epoch {probe['epoch']} "
    return (
        f"{epoch}--epochs {probe['epochs']} --hidden {probe['hidden']} --lr {probe['lr']} "
        f"--batch-size {probe['batch_size']}"
    )


# figures.smk
FIGURES, STEP_FIGURES = paper.FIGURES, paper.STEP_FIGURES


def get_configured_figures():
    """Names of the figures to make: activated, specified, and every run they need is in the grid."""
    return [
        name
        for name in FIGURES
        if GRID.figure_runs(name) and (name != "fig8" or is_probed(config["figures"][name]))
    ]


def is_probed(spec):
    """Whether the probe block covers a figure's runs (Figure 8 plots the probe table)."""
    probe = config["probe"]
    return (
        probe["activate"]
        and (probe["dataset"], probe["arch"]) == (spec["dataset"], spec["arch"])
        and set(spec["algos"]) <= set(probe["algos"])
    )


def get_figure_metrics(wildcards):
    """metrics.json of every run a figure draws (every seed: the best one is chosen when it is drawn)."""
    return [TRAIN_METRICS.format(**vars(run)) for run in GRID.figure_runs(wildcards.fig)]


def get_weight_files(wildcards):
    return expand("results/weights/{fig}/{algo}.npz", fig=wildcards.fig, algo=config["figures"][wildcards.fig]["algos"])


def get_figure_inputs(wildcards):
    inputs = {"runs": "results/tables/runs.csv", "layers": "results/tables/layers.csv"}
    if wildcards.fig in STEP_FIGURES:
        inputs["epoch_means"] = f"results/figures/data/{wildcards.fig}.epochs.csv"
        inputs["steps"] = f"results/figures/data/{wildcards.fig}.steps.csv"
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
    return args


def get_figure_data_args(wildcards):
    """The figure's data files beyond runs.csv and layers.csv, as `trifecta figure` options (also its inputs)."""
    inputs = get_figure_inputs(wildcards)
    options = {"epoch_means": "--epoch-means", "steps": "--steps", "probe": "--probe", "weights": "--weights"}
    return " ".join(f"{options[k]} {' '.join(v) if isinstance(v, list) else v}" for k, v in inputs.items() if k in options)


def get_weight_args(wildcards):
    spec = config["figures"][wildcards.fig]
    layer = spec["layers"][-1] if spec.get("layers") else 6
    epoch = "" if spec.get("epoch") is None else f" --epoch {spec['epoch']}"
    return f"--dataset {spec['dataset']} --arch {spec['arch']} --layer {layer}{epoch}"


# audit.smk
def get_grid_json():
    """The grid entries (`runs`) as JSON, what the audit checks every run's recorded settings against: only what
    names runs and their settings (entries named by position), so that names and resources rerun nothing."""
    keys = ("datasets", "archs", "algos", "seeds", "settings")
    entries = [{"name": f"runs[{i}]", **{k: e[k] for k in keys}} for i, e in enumerate(config["runs"])]
    return json.dumps(entries, sort_keys=True)


def get_lineage_fragments():
    fragments = expand("results/tables/{table}.lineage.json", table=TABLES)
    if get_probe_tables():
        fragments.append("results/tables/probe.lineage.json")
    fragments += expand("results/figures/{fig}.lineage.json", fig=get_configured_figures())
    return fragments
