"""Hashes of code, data and the checkout: the code behind each command, data checksums, git state, run
identities; the parsed code that runcode.py (a run's code identity) compares; no torch.

The code behind a command (`trifecta tables`, `trifecta figure`, ...) is its module and every package module it
imports, found by parsing the imports; the workflow puts that hash into the params of the rules that run the
command, since Snakemake does not notice edits inside src/. Parsed code is hashed without comments,
docstrings and help texts (a string given as the keyword argument `help=`, as a setting's declaration and an
argparse option give it: display text): fixing a comment or a help text reruns nothing, any change of code reruns
what it does. A training run's code is finer: the definitions of trifecta/training/ it can execute (runcode.py).
"""

import ast
import functools
import hashlib
import json
import os
import subprocess
from pathlib import Path

from trifecta.training.registry import dataset_error, dataset_files
from trifecta.training.rundir import sha256_file

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/trifecta
PACKAGE = PACKAGE_DIR.name

def _module_path(name: str) -> Path:
    """'algorithms' or 'algorithms.ff' or 'train' -> the file (a package's __init__.py)."""
    path = PACKAGE_DIR.joinpath(*name.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _parsed(path: Path) -> ast.Module:
    """A module's syntax tree, parsed once per version of the file."""
    return _parse(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _parse(path: str, mtime_ns: int) -> ast.Module:
    """The tree without docstrings, and with every `help="..."` string blank (display text, neither imports nor
    code)."""
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        if (isinstance(node, ast.keyword) and node.arg == "help" and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            node.value.value = ""
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return tree


def _direct_imports(path: Path) -> list[Path]:
    """The package files one module imports (a package's __init__.py with any of its modules)."""
    return _imports(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _imports(path: str, mtime_ns: int) -> list[Path]:
    found = []
    for node in ast.walk(_parse(path, mtime_ns)):
        names = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            base = node.module.split(".")[1:]
            names = [".".join(base)] if base else []
            names += [".".join([*base, alias.name]) for alias in node.names]  # modules among the names
            if len(base) > 1 and (PACKAGE_DIR / base[0]).is_dir():  # trifecta.x.y runs trifecta/x/__init__.py
                found.append(PACKAGE_DIR / base[0] / "__init__.py")
        elif isinstance(node, ast.Import):
            names = [a.name.split(".", 1)[1] for a in node.names if a.name.startswith(PACKAGE + ".")]
        found += [_module_path(n) for n in names if n and _module_path(n).exists()]
    return found


def package_imports(module: str) -> set[str]:
    """Package files (relative paths) that `module` (e.g. "probe.py") imports, itself included, transitively."""
    seen, todo = set(), [PACKAGE_DIR / module]
    while todo:
        path = todo.pop()
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        if rel not in seen and path.exists():
            seen.add(rel)
            todo += _direct_imports(path)
    return seen


def _code(path: Path) -> str:
    """The parsed code of a module: comments, blank lines and docstrings do not count."""
    return _dump(_parsed(path))


def _dump(node) -> str:
    """A syntax tree as text that does not depend on the Python version: ast.dump's text does (3.12 adds
    `type_params=[]` to every function, 3.13 leaves out empty fields), so fields that are None or empty are
    left out here and positions never count."""
    if isinstance(node, ast.AST):
        fields = [(name, getattr(node, name, None)) for name in node._fields]
        return type(node).__name__ + "(" + ",".join(f"{name}={_dump(value)}" for name, value in fields
                                                    if value is not None and value != []) + ")"
    if isinstance(node, list):
        return "[" + ",".join(_dump(item) for item in node) + "]"
    return repr(node)


def code_hash(files) -> str:
    """sha256 over the parsed code of package files (relative paths), in order."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + _code(PACKAGE_DIR / name).encode() + b"\0")
    return digest.hexdigest()


def command_hash(module: str) -> str:
    """The parsed code behind a command: its module (e.g. "analysis/tables.py") and what it imports."""
    return code_hash(package_imports(module))


def source_hash() -> str:
    """sha256 over every .py file of the package, byte for byte (provenance: exactly which source ran)."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# What can change a result: the package, the workflow and its config, the environment files. Not the site's
# cluster profile (slurm/), the README or the tests.
RESULT_PATHS = ("src", "workflow", "Snakefile", "config.yaml", "envs", "pyproject.toml")


def git_state(extra_paths=()) -> dict:
    """Commit of the checkout holding the package, and whether (and in which files) it differs from that commit
    where a result could: RESULT_PATHS and `extra_paths` (e.g. a --settings file), untracked files included. None
    outside a git checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10)
    try:
        head, top = git("rev-parse", "HEAD"), git("rev-parse", "--show-toplevel")
        if head.returncode != 0 or top.returncode != 0:
            return {"commit": None, "dirty": None}
        root = Path(top.stdout.strip())
        paths = [str(p) for p in RESULT_PATHS if (root / p).exists()]
        paths += [os.path.relpath(Path(p).resolve(), root) for p in extra_paths
                  if Path(p).resolve().is_relative_to(root)]
        status = git("-C", str(root), "status", "--porcelain", "--untracked-files=all", "--", *paths)
        changed = sorted(line[3:] for line in status.stdout.splitlines())
        return {"commit": head.stdout.strip(), "dirty": bool(changed), "dirty_files": changed[:50]}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def data_checksums(name: str, data_dir: Path) -> dict[str, str]:
    """{file: sha256} of every file a dataset is read from (part of a run's identity)."""
    sums = {}
    for rel, path in dataset_files(name, Path(data_dir)).items():
        try:
            sums[rel] = sha256_file(path)
        except OSError as err:
            raise dataset_error(name, Path(data_dir), f"cannot read {rel} ({err})") from err
    return sums


IDENTITY_KEYS = ("dataset", "arch", "algo", "seed", "settings", "recipe", "training_code", "data")  # what a run is


def record_identity(record: dict) -> dict:
    """The identity part of a run's record (run.json holds the identity's keys at its top level)."""
    return {key: record[key] for key in IDENTITY_KEYS if key in record}


def identity_sha256(identity: dict) -> str:
    """Short hash of a run's identity (what determines its results); names its checkpoint folder."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def identity_differences(recorded: dict, expected: dict) -> list[tuple[str, object, object]]:
    """(what, recorded, expected) for each part of a run's recorded identity that differs from `expected`: the run's
    names, each setting (`settings.KEY`), the training code, the recipe (`recipe.KEY`) and each data file
    (`data.FILE`) where `expected` has them. A part missing on one side counts as a difference (recorded or
    expected None)."""
    diffs = [(key, recorded.get(key), expected[key]) for key in ("dataset", "arch", "algo", "seed", "training_code")
             if key in expected and recorded.get(key) != expected[key]]
    parts = [("settings", "settings")] + [(key, key) for key in ("recipe", "data") if key in expected]
    for label, key in parts:
        mine, theirs = recorded.get(key) or {}, expected[key]
        diffs += [(f"{label}.{k}", mine.get(k), theirs.get(k)) for k in sorted(set(mine) | set(theirs))
                  if mine.get(k) != theirs.get(k)]
    return diffs
