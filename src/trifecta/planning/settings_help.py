"""The training settings as readers see them, rendered from their declaration in training/settings.py (name, type,
default, rules, help text): `trifecta train --help`'s list of settings and the settings table of
docs/configuration.md; the durations `trifecta status` shows. No torch.

    python -m trifecta.planning.settings_help                                 # print the settings table
    python -m trifecta.planning.settings_help --docs [docs/configuration.md]  # write it between the file's markers

After a setting's declaration changes, the second command renders the docs again (tests/unit/test_settings.py
fails until it has).
"""

import argparse
import dataclasses
from pathlib import Path

from trifecta.training.settings import FIELDS, format_value
from trifecta.training.registry import BASELINES

TABLE_START = ("<!-- settings table: rendered from src/trifecta/training/settings.py by "
               "`python -m trifecta.planning.settings_help --docs` -->")
TABLE_END = "<!-- end of the settings table -->"
KINDS = {int: "integer", float: "number", bool: "`true` or `false`", str: "text",
         list[int]: "epochs: `10,100` or a YAML list", list[tuple[int, float]]: "`EPOCH:LR` pairs, comma-separated"}


def default_of(name: str):
    f = FIELDS[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def describe_settings() -> list[tuple[str, str, str]]:
    """(key, default as written on the command line, meaning) of every setting."""
    return [(name, format_value(default_of(name)), f.metadata["help"]) for name, f in FIELDS.items()]


def allowed(name: str) -> str:
    """What a setting may be, from its type and rules: `integer >= 1`, `number in [0, 1)`, one of its choices."""
    f = FIELDS[name]
    rules = f.metadata["rules"]
    if "choices" in rules:
        return ", ".join(f"`{choice}`" for choice in rules["choices"])
    kind, low = KINDS[f.type], rules.get("minimum", rules.get("exclusive_minimum"))
    if "exclusive_maximum" in rules:  # as validate() checks it
        return f"{kind} in [{low}, {rules['exclusive_maximum']})"
    if "minimum" in rules:
        return f"{kind} >= {low}"
    return f"{kind} > {low}" if "exclusive_minimum" in rules else kind


def settings_table() -> str:
    """docs/configuration.md's table: every setting with its default as `--set` takes it, what it may be, its
    meaning."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    rows += [f"| `{key}` | {f'`{default}`' if default else 'none'} | {allowed(key)} | {meaning} |"
             for key, default, meaning in describe_settings()]
    return "\n".join(rows)


def settings_help() -> str:
    """Every setting with its default and meaning, then the baselines' own defaults (for `--help`)."""
    rows = describe_settings()
    width = max(len(f"{k}={v or None}") for k, v, _ in rows)
    lines = ["settings (--set KEY=VALUE; default shown):"]
    lines += [f"  {f'{k}={v or None}':<{width}}  {meaning}" for k, v, meaning in rows]
    lines.append("a baseline's source sets other defaults (a --set still wins):")
    for name, baseline in BASELINES.items():
        if baseline.defaults:
            values = " ".join(f"{k}={format_value(v)}" for k, v in baseline.defaults.items())
            per_dataset = "; ".join(f"{d}: " + " ".join(f"{k}={format_value(v)}" for k, v in over.items())
                                    for d, over in baseline.dataset_defaults.items())
            lines.append(f"  {name}: {values}" + (f" ({per_dataset})" if per_dataset else ""))
    return "\n".join(lines)


def write_table(path: Path) -> None:
    """Replace what lies between the file's settings-table markers by settings_table()."""
    text = path.read_text()
    if TABLE_START not in text or TABLE_END not in text:
        raise SystemExit(f"{path}: no settings table here (its markers: {TABLE_START} ... {TABLE_END})")
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    path.write_text(text[:start] + "\n" + settings_table() + "\n" + text[end:])


def format_duration(seconds: float | None) -> str:
    """12m05s under an hour, 3h02m above; "—" for None (progress lines, `trifecta status`)."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trifecta.planning.settings_help",
                                description="The settings table, rendered from training/settings.py.")
    p.add_argument("--docs", type=Path, nargs="?", const=Path("docs/configuration.md"), metavar="FILE",
                   help="write it between the markers of FILE (default: docs/configuration.md) instead of printing")
    args = p.parse_args(argv)
    if args.docs is None:
        print(settings_table())
    else:
        write_table(args.docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
