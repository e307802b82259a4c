"""The docs: a short README whose first two code blocks are the embedded default and the tests (CI runs the
second), links that resolve, every output column documented, and no working notes in config files."""

import re
from pathlib import Path

from trifecta.analysis import collect, probe, tables
from trifecta.training import rundir

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "CHANGELOG.md"]


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```\w*\n(.*?)^```", text, re.M | re.S)


def test_the_readme_is_short_and_starts_with_the_two_commands():
    text = (REPO / "README.md").read_text()
    assert len(text) <= 8000, len(text)
    first, second = code_blocks(text)[:2]
    assert "snakemake --cores 2 --configfile workflow/embedded.yaml" in first
    assert second.strip().endswith(".venv/bin/python -m pytest -m slow") and "pip install -e '.[test]'" in second


def test_every_relative_link_resolves():
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)]+)\)", doc.read_text()):
            if re.match(r"[a-z]+://", target) or target.startswith("#"):
                continue
            path, _, anchor = target.partition("#")
            resolved = (doc.parent / path).resolve()
            assert resolved.exists(), (doc.name, target)
            if anchor and resolved.suffix == ".md":
                headings = [re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                            for h in re.findall(r"^#+ (.+)$", resolved.read_text(), re.M)]
                assert anchor in headings, (doc.name, target, headings)


def test_every_column_of_the_outputs_is_documented():
    text = (REPO / "docs/output.md").read_text()
    columns = {*rundir.STEP_KEYS, *rundir.EVAL_COLUMNS, *rundir.ENSEMBLE_COLUMNS, *collect.RUN_COLUMNS,
               *collect.LAYER_COLUMNS, *tables.CSV_COLUMNS, *probe.PROBE_COLUMNS}
    assert not {c for c in columns if c not in text}
    assert all(name in text for name in rundir.FILES)


def test_no_working_notes_in_config_files():
    for name in ("config.yaml", "pyproject.toml", "workflow/embedded.yaml", "slurm/config.yaml", "envs/torch.yaml"):
        text = (REPO / name).read_text()
        assert not re.search(r"\bissue \d+|lent to this project|this session", text, re.I), name


USER_DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CONFIG_FILES = ["config.yaml", "workflow/embedded.yaml", "slurm/config.yaml", "envs/torch.yaml",
                "workflow/schemas/config.schema.yaml", "pyproject.toml"]
ROOTS = ("src/", "workflow/", "tests/", "benchmarks/", "docs/", "envs/", "slurm/", ".ci/")


def test_no_working_notes_in_user_docs():
    """What a reader needs, not the history of the work (that is the CHANGELOG's, dated)."""
    for doc in USER_DOCS:
        text = doc.read_text()
        assert not re.search(r"\bissue \d+|lent to this project|this session|this project's machines", text, re.I), \
            doc.name


def named_paths(text: str) -> set[str]:
    """Paths of this repository that a text names: `src/...`, `workflow/...`, ..., or a module `training/x.py`."""
    found = set()
    for name in re.findall(r"[`(\s]((?:[\w.-]+/)+[\w.-]+\.(?:py|smk|yaml|csv|md|rst|sh|toml))\b", text):
        if name.startswith(ROOTS):
            found.add(name)
        elif name.endswith(".py") and "/" in name and not name.startswith(("~", ".", "/")):
            found.add(f"src/trifecta/{name}")
    return found


def test_every_path_the_docs_and_config_files_name_exists():
    for doc in [*USER_DOCS, *(REPO / name for name in CONFIG_FILES)]:
        missing = sorted(p for p in named_paths(doc.read_text()) if not (REPO / p).exists())
        assert not missing, (doc.name, missing)
