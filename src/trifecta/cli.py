"""The `trifecta` command: one subcommand per stage, each a thin wrapper around a module's main().

    trifecta --help | --version | COMMAND --help
"""

import importlib
import logging
import sys

from trifecta import __version__

# subcommand -> (module whose main(argv) implements it, what it does)
COMMANDS = {
    "train": ("trifecta.operations.train", "train one run (dataset, architecture, algorithm, seed) into a run directory"),
    "selftest": ("trifecta.operations.selftest", "check this machine's training path before a grid runs (the preflight)"),
    "download": ("trifecta.operations.download", "fetch datasets into the data directory (once, on a machine with internet)"),
    "status": ("trifecta.operations.status", "every run of a grid: state, epochs, accuracy, ETA, SLURM job, hours left"),
    "why": ("trifecta.operations.why", "why the workflow trains a run again, or not: what changed since it ran"),
    "store": ("trifecta.operations.store", "the run store's identities: size, state, who uses each; `prune` what nothing uses"),
    "collect": ("trifecta.analysis.aggregate", "finished runs -> runs.csv, layers.csv and step tables"),
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


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: trifecta COMMAND [options]   (trifecta COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "  --help      this list", "  --version   the package's version"]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(usage())
        return 0
    if argv[:1] == ["--version"]:
        print(f"trifecta {__version__}")
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(usage() + ("" if not argv else f"\n\ntrifecta: error: unknown command '{argv[0]}'"), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    module = importlib.import_module(COMMANDS[argv[0]][0])
    try:
        return module.main(argv[1:])
    except (ValueError, RuntimeError, OSError) as err:  # configuration, data and checkpoint errors
        print(f"trifecta {argv[0]}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
