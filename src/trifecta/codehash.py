"""Hashes: of the package's code by stage, of files, of run identities; importable without torch.

Snakemake does not notice edits inside src/, so the workflow puts a hash of each stage's code into its rules'
params: an edit to training code reruns training, an edit to plotting code reruns only the figures. A stage's
code is every package module its commands import, directly or through other modules, found by parsing the
imports (no table to keep by hand), less the training code that every later stage depends on anyway (an edit
there reruns the training and so everything after it). The hash is of the parsed code, without comments and
docstrings: fixing a comment reruns nothing, while any change of code reruns what it does.
"""

import ast
import hashlib
import json
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE = PACKAGE_DIR.name

# The command modules (`trifecta <command>`) of each stage's rules.
STAGE_COMMANDS = {
    "training": ("train.py",),
    "aggregate": ("aggregate.py",),
    "analysis": ("tables.py", "scorecard.py", "lineage.py", "audit.py"),
    "probe": ("probe.py",),
    "weights": ("weights.py",),
    "figures": ("figures.py",),
    "interim": ("interim.py",),
}


def _module_path(name: str) -> Path:
    """'algorithms' or 'algorithms.ff' or 'train' -> the file (a package's __init__.py)."""
    path = PACKAGE_DIR.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def package_imports(module: str) -> set[str]:
    """Package files (relative paths) that `module` (e.g. "probe.py") imports, itself included, transitively."""
    seen, todo = set(), [PACKAGE_DIR / module]
    while todo:
        path = todo.pop()
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        if rel in seen or not path.exists():
            continue
        seen.add(rel)
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
                base = node.module.split(".")[1:]
                names = [".".join(base)] if base else []
                names += [".".join([*base, alias.name]) for alias in node.names]  # modules among the names
            elif isinstance(node, ast.Import):
                names = [a.name.split(".", 1)[1] for a in node.names if a.name.startswith(PACKAGE + ".")]
            todo += [_module_path(n) for n in names if n and _module_path(n).exists()]
            if isinstance(node, ast.ImportFrom) and node.module and node.module.count(".") >= 1:
                parent = node.module.split(".")[1]  # importing trifecta.x.y runs trifecta/x/__init__.py
                if (PACKAGE_DIR / parent).is_dir():
                    todo.append(PACKAGE_DIR / parent / "__init__.py")
    return seen


def stage_files(stage: str) -> list[str]:
    """The package files whose code a stage's outputs depend on, beyond the training code (see above)."""
    files = set().union(*(package_imports(m) for m in STAGE_COMMANDS[stage]))
    return sorted(files if stage == "training" else files - set(stage_files("training")))


STAGES = {stage: tuple(stage_files(stage)) for stage in STAGE_COMMANDS}


def _code(text: str) -> str:
    """The parsed code of a module without docstrings: comments, blank lines and docstrings do not count."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def code_hash(files) -> str:
    """sha256 over the parsed code of package files (relative paths), in order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + _code((PACKAGE_DIR / name).read_text()).encode() + b"\0")
    return digest.hexdigest()


def stage_hash(stage: str) -> str:
    return code_hash(STAGES[stage])


def source_hash() -> str:
    """sha256 over every .py file of the package, byte for byte (provenance: exactly which source ran)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


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
