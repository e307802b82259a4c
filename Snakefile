"""The Trifecta reproduction: `snakemake --profile slurm` (cluster) or see the README for the CPU example."""

import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")


# This checkout's package, one way for both: planning imports its torch-free modules from here (the rule files),
# and every rule runs `python -m trifecta.cli COMMAND` from here, whatever environment (the venv, a conda env of
# --sdm conda, wherever its prefix) or working directory runs it: Snakemake clears PYTHONPATH inside conda envs,
# so each shell command sets it. Not a rerun trigger: a moved checkout reruns nothing.
SRC = Path(workflow.basedir) / "src"
sys.path.insert(0, str(SRC))
shell.prefix(f"set -euo pipefail; export PYTHONPATH={shlex.quote(str(SRC))}; ")


configfile: Path(workflow.basedir) / "config.yaml"  # the paper's grid, also when run with -d elsewhere


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preflight.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/collect.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/interim.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/audit.smk"


# The default target re-checks the results every time it is asked (seconds): a results/ that no longer passes the
# audit (a run directory altered or swapped by hand) fails the invocation, naming the files, and loses its report.
rule all:
    default_target: True
    input:
        get_final_output(),
    log:
        "logs/check_results.log",
    localrule: True
    conda:
        "envs/torch.yaml"
    params:
        check=get_results_check(),
    shell:
        "{params.check} 2>&1 | tee {log}"
