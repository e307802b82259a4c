"""Hashes: of the package's source by stage, of files, of run identities; importable without torch.

Snakemake does not notice edits inside src/, so the workflow puts these hashes into each rule's params:
an edit to training code reruns training, an edit to plotting code reruns only the figures.
"""

import hashlib
import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# Path prefixes (relative to the package) whose edits change each stage's outputs.
STAGES = {
    "training": ("algorithms/", "checkpoint.py", "config.py", "data.py", "models.py", "provenance.py", "registry.py",
                 "train.py"),
    "aggregate": ("aggregate.py",),
    "analysis": ("audit.py", "lineage.py", "tables.py"),  # paper_values.csv is a rule input instead
    "probe": ("probe.py",),
    "weights": ("tables.py", "weights.py"),  # exported weights (tables.best_seed picks the run)
    "figures": ("figures.py", "tables.py"),
}


def source_hash(prefixes: tuple[str, ...] | None = None) -> str:
    """sha256 over the package's .py files (relative path + content), optionally only those under `prefixes`."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        name = path.relative_to(PACKAGE_DIR).as_posix()
        if prefixes is None or name.startswith(prefixes):
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def stage_hash(stage: str) -> str:
    return source_hash(STAGES[stage])


def sha256_file(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def identity_sha256(identity: dict) -> str:
    """Short hash of a run's identity (what determines its results); names its checkpoint folder."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
