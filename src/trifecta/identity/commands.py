"""The `trifecta` commands, one home: each command's name, the module whose main(argv) implements it, what it
does; and the code behind a command (its module and every package module that imports, as parsed code), which
the workflow's rules carry in their params (Snakemake does not see edits inside src/) and the lineage records.
No torch.

    command_code("tables")    # sha256 of analysis/tables.py and what it imports
"""

from trifecta.identity.codehash import command_hash

# subcommand -> (module whose main(argv) implements it, what it does)
COMMANDS = {
    "train": ("trifecta.operations.train", "train one run (dataset, architecture, algorithm, seed) into a run directory"),
    "selftest": ("trifecta.operations.selftest", "check this machine's training path before a grid runs (the preflight)"),
    "download": ("trifecta.operations.download", "fetch datasets into the data directory (once, on a machine with internet)"),
    "status": ("trifecta.operations.status", "every run of a grid: state, epochs, accuracy, ETA, SLURM job, hours left"),
    "why": ("trifecta.operations.why", "why the workflow trains a run again, or not: what changed since it ran"),
    "store": ("trifecta.operations.store", "the run store's identities: size, state, who uses each; `prune` what nothing uses"),
    "collect": ("trifecta.analysis.collect", "finished runs -> runs.csv, layers.csv and step tables"),
    "tables": ("trifecta.analysis.tables", "Tables 1-3 beside the paper's values"),
    "scorecard": ("trifecta.analysis.scorecard", "judge every table cell: reproduced, not reproduced or inconclusive"),
    "interim": ("trifecta.analysis.interim", "tables and figures of a running grid from the runs finished so far"),
    "probe": ("trifecta.analysis.probe", "probing classifiers on each layer's frozen features (Figure 8)"),
    "export-weights": ("trifecta.analysis.weights", "one layer's weights from a kept snapshot (Figure 10)"),
    "figure": ("trifecta.analysis.figures", "one of Figures 1-10 from the collected tables"),
    "lineage": ("trifecta.provenance.lineage", "every table cell and figure -> its runs and file hashes"),
    "audit": ("trifecta.provenance.audit", "re-verify the lineage: hashes, recomputed cells, provenance, runs against the grid"),
    "crate": ("trifecta.provenance.crate", "the results as a Workflow Run RO-Crate (Provenance Run Crate profile)"),
}


def module_path(command: str) -> str:
    """The package file of a command's module: "tables" -> "analysis/tables.py"."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; the commands: {', '.join(COMMANDS)}")
    return COMMANDS[command][0].removeprefix("trifecta.").replace(".", "/") + ".py"


def command_code(command: str) -> str:
    """The parsed code behind a command (identity/codehash.command_hash of its module)."""
    return command_hash(module_path(command))
