"""docs/development.md's module map is the package: every module listed once, its folders importing only from the
folders above them in the map (one way), what the map says, with no import cycle between modules."""

import re
from pathlib import Path

from trifecta.identity import codehash

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs/development.md").read_text()
TEXT = DOC[DOC.index("## Module map"):DOC.index("## What reruns when")]
LAYERS = re.findall(r"^\| `(\w+)` \| [^|]+ \| [^|]+ \|$", TEXT, re.M)  # the folders, in the map's order


def stage_of(module: str) -> str:
    """A module's folder (`cli.py` and the package's __init__.py: the top, "cli")."""
    folder = module.split("/")[0]
    return folder if folder in LAYERS else "cli"


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


def test_the_folders_import_what_the_map_says_and_only_from_above():
    said = {stage: set() if imports == "nothing else of the package" else set(re.findall(r"`(\w+)`", imports))
            for stage, imports in re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|$", TEXT, re.M)}
    actual = {stage: set() for stage in LAYERS}
    for module in modules():
        for imported in codehash._direct_imports(codehash.PACKAGE_DIR / module):
            target = stage_of(imported.relative_to(codehash.PACKAGE_DIR).as_posix())
            if target != stage_of(module) and stage_of(module) != "cli":
                actual[stage_of(module)].add(target)
    assert said == actual
    assert LAYERS == ["training", "identity", "planning", "operations", "analysis", "provenance"]
    for stage, imports in actual.items():
        assert all(LAYERS.index(other) < LAYERS.index(stage) for other in imports), stage


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
