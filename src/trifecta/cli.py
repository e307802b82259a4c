"""The `trifecta` command: one subcommand per stage, each a thin wrapper around a module's main()."""

import importlib
import sys

# subcommand -> module whose main(argv) implements it
COMMANDS = {
    "train": "trifecta.train",
    "download": "trifecta.download",
    "collect": "trifecta.aggregate",
    "tables": "trifecta.tables",
    "scorecard": "trifecta.scorecard",
    "interim": "trifecta.interim",
    "probe": "trifecta.probe",
    "export-weights": "trifecta.weights",
    "figure": "trifecta.figures",
    "lineage": "trifecta.lineage",
    "audit": "trifecta.audit",
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(f"usage: trifecta {{{','.join(COMMANDS)}}} ... (trifecta COMMAND --help for details)", file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]])
    try:
        return module.main(argv[1:])
    except (ValueError, RuntimeError, OSError) as err:  # configuration, data and checkpoint errors
        print(f"trifecta {argv[0]}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
