"""Config validation, the run grid, code hashes, the rules' command options and input functions."""

import functools
import json
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The torch-free modules of this checkout's package (SRC, on sys.path: the Snakefile) give names, settings,
# declarations, the grid and code hashes: planning checks every run with the package's own validation, no torch.
from trifecta.identity import commands, runcode  # noqa: E402
from trifecta.planning import paper, runtimes  # noqa: E402
from trifecta.planning.configfile import schema_problem  # noqa: E402
from trifecta.planning.grid import Grid, GridError  # noqa: E402
from trifecta.planning.runs import RUN_ID, TRAIN_DIR, Run  # noqa: E402
from trifecta.training.settings import render_settings  # noqa: E402

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


def get_code(command):
    """The parsed code behind a command of the rule (its module and what it imports), e.g. get_code("tables")."""
    return commands.command_code(command)


def get_run_code(wildcards):
    """A run's code identity: the training code it can execute for its dataset, architecture and algorithm."""
    return runcode.run_code(wildcards.dataset, wildcards.arch, wildcards.algo).sha256


# ---- Paths ----

TRAIN_METRICS = f"{TRAIN_DIR}/{RUN_ID}/metrics.json"
PROBE_TABLE = f"results/probe/{RUN_ID}.csv"
DATA_MARKER = os.path.join(config["data_dir"], "{dataset}.ok")  # written once the dataset is there
PREFLIGHT = "results/preflight/report.json"  # the selftest; the code it tested is in it (preflight.smk)
TABLES, FIGURES = paper.TABLES, paper.FIGURES  # declared once, in the package
TABLE_FILES = ["csv", "md", "tex", "html"]
LINEAGE, AUDIT_REPORT = "results/lineage.json", "results/audit.txt"


wildcard_constraints:
    dataset="|".join(sorted({run.dataset for run in GRID.runs})),
    arch="|".join(sorted({run.arch for run in GRID.runs})),
    algo="|".join(sorted({run.algo for run in GRID.runs}, key=len, reverse=True)),
    seed=r"\d+",


def cli_args(options):
    """A command's options from a mapping, the one way rules write them: {"show-layers": [1, 6], "epoch": None,
    "lr": 0.001} -> "--show-layers 1 6 --lr 0.001"; None and empty lists are left out."""
    words = []
    for key, value in options.items():
        values = value if isinstance(value, list) else [value]
        if value is not None and values:
            words += [f"--{key}", *(shlex.quote(str(v)) for v in values)]
    return " ".join(words)


# ---- Training ----


def get_final_output():
    """What `snakemake` builds by default: every run's metrics.json (a lost or incomplete run directory is shown
    again from the store: Snakemake rebuilds a missing input only where a job that needs it runs), and each
    stage's targets."""
    return [
        *get_run_metrics(),
        "results/tables/runs.csv",
        "results/tables/layers.csv",
        *get_analysis_outputs(),
    ]


def get_results_check():
    """The default target's command: the audit of results/ as they are now (`true` without the audit)."""
    if not config["audit"]["activate"]:
        return "true"
    return f"python -m trifecta.cli audit {LINEAGE} --out {AUDIT_REPORT}"


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


def get_preflight_option(wildcards):
    """`--preflight REPORT` when the preflight is on: the run trains only after the report passed for its code."""
    return cli_args({"preflight": PREFLIGHT if config["preflight"]["activate"] else None})


def get_train_settings(wildcards):
    """Only this run's settings, so that editing another entry does not rerun it."""
    return render_settings(GRID.runs[get_run(wildcards)]["settings"])


@functools.cache
def get_epoch_times():
    """Epoch times of the run store's finished runs, read once per planning (not once per job)."""
    return runtimes.epoch_times(config["store_dir"])


def get_train_runtime(wildcards, attempt):
    """SLURM --time, minutes: start-up + epochs x minutes per epoch (measured in the store with a margin, else the
    config's estimate), times the attempt (a retry after a time limit gets longer); planning/runtimes.py."""
    return runtimes.train_minutes(GRID, get_run(wildcards), get_epoch_times(), attempt)


def get_train_mem_mb(wildcards):
    return GRID.runs[get_run(wildcards)].get("resources", {}).get("mem_mb", config["resources"]["mem_mb"])


# ---- Analysis: tables, probes, figures, audit ----


def get_analysis_outputs():
    """Every final output of the analysis stage under the current config: tables, probes, figures, audit."""
    outputs = expand("results/tables/{table}.{ext}", table=TABLES, ext=TABLE_FILES)
    outputs += ["results/tables/scorecard.csv", "results/tables/scorecard.md"]
    if get_probe_tables():
        outputs.append("results/tables/probe.csv")
    outputs += expand("results/figures/{fig}.{ext}", fig=get_configured_figures(), ext=["png", "pdf"])
    if config["audit"]["activate"]:
        outputs += [AUDIT_REPORT, "results/ro-crate-metadata.json"]
    return outputs


def remove_stale_audit_report():
    """An invocation that writes results/ (but for interim results and the preflight) removes the audit report
    before its jobs start: until the audit runs again, the report would speak of results that are no longer there.
    The plain `snakemake` audits and writes it again; a target short of it (`train_all`, a table) leaves none."""
    exempt = ("results/interim/", "results/preflight/")
    writes = any(
        str(f).startswith("results/") and not str(f).startswith(exempt)
        for job in workflow.dag.needrun_jobs()
        for f in job.output
    )
    if writes and os.path.exists(AUDIT_REPORT):
        os.remove(AUDIT_REPORT)
        print(
            f"note: {AUDIT_REPORT} removed: this run changes results/; the plain `snakemake` audits them again",
            file=sys.stderr,
        )


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


def get_configured_runs():
    """Every run of the grid, by id (`trifecta interim --configured`)."""
    return " ".join(run.id for run in GRID.runs)


def get_probe_runs():
    """The runs to probe: probe.dataset x probe.arch x probe.algos, every seed in the grid."""
    probe = config["probe"]
    if not probe["activate"]:
        return []
    return [
        run for algo in probe["algos"] for run in GRID.select(dataset=probe["dataset"], arch=probe["arch"], algo=algo)
    ]


def get_probe_tables():
    """Per-run probe tables, one per run to probe (PROBE_TABLE)."""
    return [PROBE_TABLE.format(**vars(run)) for run in get_probe_runs()]


def get_probe_settings():
    """`trifecta probe` options: the `probe:` block's values over the probe's declared defaults (only these:
    editing them reruns the probes)."""
    from trifecta.planning.probing import PROBE_DEFAULTS

    probe = {**PROBE_DEFAULTS, **config["probe"]}
    keys = {"epoch": "epoch", "epochs": "epochs", "hidden": "hidden", "lr": "lr", "batch-size": "batch_size"}
    return cli_args({option: probe.get(key) for option, key in keys.items()})


def get_configured_figures():
    """Names of the figures to make: a job of each (planning/figurejob.py) when figures are on, it has an entry,
    every run it draws is in the grid and the probe block makes the probes it draws."""
    return [name for name in FIGURES if GRID.figure_job(name)]


def get_figure_entries():
    """`trifecta interim --figures` JSON: the entry of every configured figure (interim makes its job as here)."""
    return json.dumps({name: config["figures"][name] for name in get_configured_figures()}, sort_keys=True)


def get_figure_metrics(wildcards):
    """metrics.json of every run a figure draws (every seed: the best one is chosen when it is drawn)."""
    return [TRAIN_METRICS.format(**vars(run)) for run in GRID.figure_job(wildcards.fig).runs]


def get_figure_inputs(wildcards):
    """runs.csv, layers.csv and the data files of the figure's job."""
    return {
        "runs": "results/tables/runs.csv",
        "layers": "results/tables/layers.csv",
        **GRID.figure_job(wildcards.fig).inputs,
    }


def get_figure_args(wildcards):
    """`trifecta figure` options of the figure's job: its runs, its options and its data files."""
    return cli_args(GRID.figure_job(wildcards.fig).args())


def get_weight_args(wildcards):
    """`trifecta export-weights` options of the figure's job: dataset, architecture, layer and epoch."""
    return cli_args(GRID.figure_job(wildcards.fig).export_args())


def get_grid_json():
    """The grid entries (`runs`) as JSON, what the audit checks every run's recorded settings against: only what
    names runs and their settings (entries named by position), so that names and resources rerun nothing."""
    keys = ("datasets", "archs", "algos", "seeds", "settings")
    entries = [{"name": f"runs[{i}]", **{k: e[k] for k in keys}} for i, e in enumerate(config["runs"])]
    return json.dumps(entries, sort_keys=True)


def get_lineage_fragments():
    """Every producer's lineage fragment: runs.csv's names every run of the grid, so the audit checks them all
    (and reruns after any of them)."""
    fragments = ["results/tables/runs.lineage.json"]
    fragments += expand("results/tables/{table}.lineage.json", table=TABLES)
    if get_probe_tables():
        fragments.append("results/tables/probe.lineage.json")
    fragments += expand("results/figures/{fig}.lineage.json", fig=get_configured_figures())
    return fragments
