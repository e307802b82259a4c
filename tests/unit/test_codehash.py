"""Code hashes: each stage's code is what its commands import; comments and docstrings do not count."""

import importlib.util
import shutil

import pytest

from trifecta import codehash


@pytest.fixture
def package(tmp_path):
    """A copy of the package and its own codehash module (hashing the copy's files)."""
    shutil.copytree(codehash.PACKAGE_DIR, tmp_path / "trifecta", ignore=shutil.ignore_patterns("__pycache__"))
    spec = importlib.util.spec_from_file_location("codehash_copy", tmp_path / "trifecta" / "codehash.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tmp_path / "trifecta", module


def hashes(module) -> dict:
    return {stage: module.code_hash(files) for stage, files in module.STAGES.items()}


def test_stages_are_the_modules_their_commands_import():
    assert set(codehash.STAGES["figures"]) == {"figures.py", "cells.py", "paper.py"}
    assert "models.py" in codehash.STAGES["training"] and "registry.py" in codehash.STAGES["training"]
    assert set(codehash.STAGES["probe"]) == {"probe.py"}  # the rest of what it imports is training code
    assert "lineage.py" in codehash.STAGES["analysis"] and "lineage.py" not in codehash.STAGES["figures"]
    for stage, files in codehash.STAGES.items():
        assert stage == "training" or not set(files) & set(codehash.STAGES["training"]), stage


@pytest.mark.parametrize("module, stages", [("render.py", {"analysis", "interim"}),
                                            ("cells.py", {"analysis", "weights", "figures", "interim"}),
                                            ("algorithms/ff.py", {"training"}), ("probe.py", {"probe"}),
                                            ("cli.py", set())])
def test_a_code_edit_changes_exactly_the_stages_that_import_it(package, module, stages):
    folder, copy = package
    before = hashes(copy)
    with open(folder / module, "a") as f:
        f.write("\nEDITED = 1\n")
    after = hashes(copy)
    assert {stage for stage in before if before[stage] != after[stage]} == stages


def test_comments_blank_lines_and_docstrings_change_no_hash(package):
    folder, copy = package
    before = hashes(copy)
    for name in ("algorithms/ff.py", "tables.py", "figures.py", "train.py"):
        path = folder / name
        text = path.read_text().replace('"""', '"""Reworded. ', 1)  # the module's docstring
        text = text.replace("\ndef ", "\n# a new comment\n\n\ndef ", 1)
        path.write_text(text + "\n\n# the end\n")
    assert hashes(copy) == before
    assert copy.source_hash() != codehash.source_hash()  # provenance still sees every byte


def test_a_new_module_imported_by_a_stage_joins_it(package):
    folder, copy = package
    (folder / "extra.py").write_text("VALUE = 1\n")
    with open(folder / "figures.py", "a") as f:
        f.write("\nfrom trifecta import extra  # noqa\n")
    assert "extra.py" in copy.stage_files("figures")
