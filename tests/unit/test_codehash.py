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
    assert set(codehash.STAGES["probe"]) == {"probe.py", "snapshot.py"}  # the rest it imports is training code
    assert "lineage.py" in codehash.STAGES["analysis"] and "lineage.py" not in codehash.STAGES["figures"]
    assert "registry.py" in codehash.STAGES["interim"]  # interim waits for no training job
    for stage, files in codehash.STAGES.items():
        assert "codehash.py" not in files
        assert stage in codehash.UNTRAINED_STAGES or not set(files) & set(codehash.STAGES["training"]), stage


@pytest.mark.parametrize("module, stages", [("render.py", {"analysis", "interim"}),
                                            ("cells.py", {"analysis", "weights", "figures", "interim"}),
                                            ("algorithms/ff.py", {"training"}), ("probe.py", {"probe"}),
                                            ("registry.py", {"training", "interim"}),
                                            ("snapshot.py", {"analysis", "probe", "weights"}),
                                            ("cli.py", set()), ("codehash.py", set())])
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


def test_the_hashed_text_leaves_out_what_python_versions_add():
    """ast.dump's text changes between Python versions (3.12: `type_params=[]` on every function and class;
    3.13: empty fields left out), which would rerun every job after a new interpreter; the hashed text is
    pinned here and has no empty fields."""
    import ast
    tree = ast.parse("class A(B):\n    def f(self, x: int, *a, y=1) -> str:\n        return str(x) + y\n")
    assert codehash._dump(tree) == (
        "Module(body=[ClassDef(name='A',bases=[Name(id='B',ctx=Load())],body=[FunctionDef(name='f',"
        "args=arguments(args=[arg(arg='self'),arg(arg='x',annotation=Name(id='int',ctx=Load()))],"
        "vararg=arg(arg='a'),kwonlyargs=[arg(arg='y')],kw_defaults=[Constant(value=1)]),"
        "body=[Return(value=BinOp(left=Call(func=Name(id='str',ctx=Load()),args=[Name(id='x',ctx=Load())]),"
        "op=Add(),right=Name(id='y',ctx=Load())))],returns=Name(id='str',ctx=Load()))])])")
    before = codehash._dump(tree)
    function = tree.body[0].body[0]  # as Python 3.12 parses it: one more field, empty
    newer = type("FunctionDef", (ast.FunctionDef,), {"_fields": (*ast.FunctionDef._fields, "type_params")})
    tree.body[0].body[0] = newer(**{name: getattr(function, name) for name in ast.FunctionDef._fields},
                                 type_params=[])
    assert codehash._dump(tree) == before


# Defined in training modules, though training never calls them: the registry's names, the data's download and
# the options that other commands share. Anything else used only by probes, figures or tables belongs in their
# modules: training code is part of every run's identity, so an edit there retrains the whole grid.
TRAINING_NAMES_USED_ELSEWHERE = {"main", "canonical_name", "run_id", "download_dataset", "config_from_dict",
                                 "device_from_options"}


def test_training_modules_define_only_what_training_uses():
    import ast
    defined, used = {}, set()
    for name in codehash.STAGES["training"]:
        tree = ast.parse((codehash.PACKAGE_DIR / name).read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined[node.name] = name
            elif isinstance(node, ast.Assign):
                defined.update({t.id: name for t in node.targets if isinstance(t, ast.Name)})
        for node in ast.walk(tree):
            used |= {node.id} if isinstance(node, ast.Name) else {node.attr} if isinstance(node, ast.Attribute) else set()
            used |= {alias.name for alias in node.names} if isinstance(node, ast.ImportFrom) else set()
    unused = {f"{module}: {name}" for name, module in defined.items()
              if name not in used and name not in TRAINING_NAMES_USED_ELSEWHERE and not name.startswith("__")}
    assert not unused, f"not used by training, move to the stage that uses it: {sorted(unused)}"
