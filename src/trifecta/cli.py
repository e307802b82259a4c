"""The `trifecta` command: one subcommand per stage, each a thin wrapper around a module's main().

    trifecta --help | --version | COMMAND --help
"""

import importlib
import logging
import sys

from trifecta import __version__
from trifecta.identity.commands import COMMANDS

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
