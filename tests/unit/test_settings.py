"""Settings are declared once, in training/settings.py (name, type, default, rules, help text, whether a run's
identity holds it); `trifecta train --help`, the settings table of docs/configuration.md, the default a grid entry
gets and a run's identity derive from that declaration: checked here, and followed through a default changed in a
copy of the package."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from trifecta.planning.settings_help import TABLE_END, TABLE_START, describe_settings, settings_table
from trifecta.training.settings import FIELDS, NOT_IDENTITY

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs/configuration.md"
PACKAGE = REPO / "src/trifecta"


def documented_table(text: str) -> str:
    """The settings table between the markers of docs/configuration.md."""
    return text[text.index(TABLE_START) + len(TABLE_START):text.index(TABLE_END)].strip("\n")


def test_the_docs_hold_the_rendered_settings_table():
    """If this fails after a setting changed: python -m trifecta.planning.settings_help --docs docs/configuration.md"""
    assert documented_table(DOCS.read_text()) == settings_table()


def test_every_setting_declares_its_help_rules_and_identity():
    assert [name for name, _, _ in describe_settings()] == list(FIELDS)
    for name, f in FIELDS.items():
        assert f.metadata["help"] and isinstance(f.metadata["identity"], bool), name
        assert set(f.metadata["rules"]) <= {"minimum", "exclusive_minimum", "exclusive_maximum", "choices"}, name
    assert NOT_IDENTITY == ("checkpoint_every", "precision", "eval_batch_size")


def test_the_schema_leaves_the_settings_to_the_package():
    """The schema's settings block names no setting: the package checks every entry while planning."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["$defs"]["settings"]
    assert schema["type"] == "object" and "properties" not in schema and "required" not in schema
    assert "docs/configuration.md" in schema["description"]


# ---- A default changed in the declaration alone ----

FOLLOWERS = """
import json, subprocess, sys
import trifecta
from trifecta.planning.grid import Grid
from trifecta.planning.settings_help import settings_table
entry = {"name": "e", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff"], "seeds": [0], "settings": {}}
grid = Grid.from_config({"runs": [entry]})
settings = grid.settings(next(iter(grid.runs)))
help = subprocess.run([sys.executable, "-m", "trifecta.cli", "train", "--help"], capture_output=True, text=True,
                      check=True).stdout
print(json.dumps({"package": trifecta.__file__, "help": help, "table": settings_table(),
                  "grid": settings.batch_size, "identity": settings.identity_dict()["batch_size"]}))
"""


def run_copy(copy: Path, *args) -> str:
    """Python with the copied package first on its path."""
    env = {**os.environ, "PYTHONPATH": str(copy.parent)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True, env=env,
                          cwd=copy.parent).stdout


def test_a_default_changed_in_the_declaration_alone_is_followed_everywhere(tmp_path):
    copy = tmp_path / "trifecta"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    config = copy / "training/settings.py"
    declared = re.search(r"batch_size: int = _setting\(\s*512,", config.read_text()).group()
    config.write_text(config.read_text().replace(declared, declared.replace("512", "256")))
    seen = json.loads(run_copy(copy, "-c", FOLLOWERS))
    assert seen["package"] == str(copy / "__init__.py")
    assert "  batch_size=256 " in seen["help"] and "batch_size=512" not in seen["help"]
    assert "| `batch_size` | `256` |" in seen["table"]
    assert (seen["grid"], seen["identity"]) == (256, 256)
    # the committed docs now differ in that row alone: the docs test fails until the table is rendered again
    documented = documented_table(DOCS.read_text())
    assert [row for row in seen["table"].splitlines() if row not in documented.splitlines()] == [
        row for row in seen["table"].splitlines() if row.startswith("| `batch_size` |")]
    docs = tmp_path / "configuration.md"
    shutil.copy(DOCS, docs)
    run_copy(copy, "-m", "trifecta.planning.settings_help", "--docs", str(docs))
    assert documented_table(docs.read_text()) == seen["table"]
    assert docs.read_text().replace(seen["table"], documented) == DOCS.read_text()  # only the table changed
