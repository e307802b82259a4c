"""docs/development.md's module map is the package: every module listed once, and the stages import what the
map says, with no import cycle between modules."""

import re
from pathlib import Path

from trifecta.provenance import codehash

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs/development.md").read_text()
TEXT = DOC[DOC.index("## Module map"):DOC.index("## What reruns when")]
STAGES = ("training", "analysis", "provenance")


def stage_of(module: str) -> str:
    """A module's stage: its folder, or `operations` for the modules at the top of the package."""
    folder = module.split("/")[0]
    return folder if folder in STAGES else "operations"


def modules() -> list[str]:
    """Every module with code (a package's empty __init__.py has none)."""
    found = []
    for path in sorted(codehash.PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(codehash.PACKAGE_DIR).as_posix()
        if rel != "__init__.py" and not (path.name == "__init__.py" and rel.count("/") == 1):
            found.append(rel)
    return found


def test_every_module_is_in_the_map_once():
    listed = re.findall(r"^\| `([\w/]+\.py)` \|", TEXT, re.M)
    assert sorted(listed) == sorted(modules())


def test_the_stages_import_what_the_map_says():
    said = {stage: set() if imports == "nothing else of the package" else set(re.findall(r"`(\w+)`", imports))
            for stage, imports in re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|$", TEXT, re.M)}
    actual = {stage: set() for stage in (*STAGES, "operations")}
    for module in modules():
        for imported in codehash._direct_imports(codehash.PACKAGE_DIR / module):
            target = stage_of(imported.relative_to(codehash.PACKAGE_DIR).as_posix())
            if target != stage_of(module):
                actual[stage_of(module)].add(target)
    assert said == actual


def test_no_module_imports_one_that_imports_it():
    edges = {m: {p.relative_to(codehash.PACKAGE_DIR).as_posix()
                 for p in codehash._direct_imports(codehash.PACKAGE_DIR / m)} for m in modules()}
    for module in edges:
        reached, todo = set(), list(edges[module])
        while todo:
            current = todo.pop()
            if current not in reached:
                reached.add(current)
                todo += edges.get(current, ())
        assert module not in reached, module


def test_the_package_reads_nothing_of_the_workflow():
    """src/ knows no path of workflow/ (the schema, the rules): the workflow reads the package, not the reverse."""
    for path in codehash.PACKAGE_DIR.rglob("*.py"):
        code = "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert not re.search(r'/ "workflow"|"workflow/|\'workflow/', code), path
