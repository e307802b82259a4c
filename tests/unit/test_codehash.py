"""Code hashes: a command's code is what its module imports; comments and docstrings do not count (a training
run's code identity, the definitions it can execute: test_runcode.py)."""

import ast
import importlib.util
import shutil

import pytest

from trifecta.identity import codehash, runcode

COMMANDS = ("analysis/tables.py", "analysis/figures.py", "analysis/probe.py", "analysis/weights.py",
            "analysis/collect.py", "analysis/interim.py", "provenance/lineage.py", "provenance/audit.py",
            "provenance/crate.py", "operations/selftest.py")


@pytest.fixture
def package(tmp_path):
    """A copy of the package and its own codehash module (hashing the copy's files)."""
    shutil.copytree(codehash.PACKAGE_DIR, tmp_path / "trifecta", ignore=shutil.ignore_patterns("__pycache__"))
    spec = importlib.util.spec_from_file_location("codehash_copy", tmp_path / "trifecta/identity/codehash.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tmp_path / "trifecta", module


def hashes(module) -> dict:
    """Each command's code hash."""
    return {c: module.command_hash(c) for c in COMMANDS}


def changed_by(folder, copy, edit) -> set:
    before = hashes(copy)
    edit(folder)
    after = hashes(copy)
    return {name for name in before if before[name] != after[name]}


def append(module, text="\nEDITED = 1\n"):
    def edit(folder):
        with open(folder / module, "a") as f:
            f.write(text)
    return edit


def replace(module, old, new):
    def edit(folder):
        path = folder / module
        assert old in path.read_text(), (module, old)
        path.write_text(path.read_text().replace(old, new, 1))
    return edit


def test_a_commands_code_is_what_its_module_imports():
    assert codehash.package_imports("analysis/figures.py") >= {"analysis/figures.py", "analysis/cells.py",
                                                                 "planning/paper.py"}
    assert "provenance/lineage.py" not in codehash.package_imports("analysis/figures.py")


@pytest.mark.parametrize("edit, changed", [
    (append("training/algorithms/ff.py"), {"analysis/probe.py", "operations/selftest.py"}),  # code of probes and the selftest
    (append("analysis/render.py"), {"analysis/tables.py", "analysis/interim.py"}),
    (append("analysis/cells.py"), {"analysis/tables.py", "analysis/figures.py", "analysis/weights.py",
                                   "analysis/interim.py", "provenance/audit.py"}),
    (append("analysis/figures.py"), {"analysis/figures.py", "analysis/interim.py"}),
    (append("cli.py"), set()),
    (append("identity/codehash.py"), {"provenance/lineage.py", "provenance/audit.py", "provenance/crate.py",
                                      "operations/selftest.py"}),
    # display text: a help= string (a setting's declaration, a command's option) and a figure's label retrain nothing
    (replace("training/settings.py", 'help="training epochs"', 'help="epochs of training"'), set()),
    (replace("analysis/probe.py", '"hidden ReLU units of the probe', '"units of the hidden layer'), set()),
    (replace("operations/train.py", 'help="dataset root"', 'help="the dataset root"'), set()),
    (replace("planning/paper.py", '"shallow CNN (s)"', '"shallow network (s)"'),
     {"analysis/tables.py", "analysis/figures.py", "analysis/weights.py", "analysis/interim.py", "provenance/audit.py",
      "provenance/crate.py", "provenance/lineage.py"} & set(COMMANDS) - {"provenance/lineage.py"}),
])
def test_an_edit_changes_exactly_the_code_that_depends_on_it(package, edit, changed):
    folder, copy = package
    assert changed_by(folder, copy, edit) == changed


def test_comments_blank_lines_and_docstrings_change_no_hash(package):
    folder, copy = package
    before = hashes(copy)
    for name in ("training/algorithms/ff.py", "analysis/tables.py", "analysis/figures.py", "operations/train.py"):
        path = folder / name
        text = path.read_text().replace('"""', '"""Reworded. ', 1)  # the module's docstring
        text = text.replace("\ndef ", "\n# a new comment\n\n\ndef ", 1)
        path.write_text(text + "\n\n# the end\n")
    assert hashes(copy) == before
    assert copy.source_hash() != codehash.source_hash()  # provenance still sees every byte


def test_only_a_help_keywords_string_is_display_text(package):
    """`help="..."` is ignored like a docstring; any other string, or a help that is not a plain string, counts."""
    folder, copy = package
    option = 'p.add_argument("--hidden", type=int'
    assert changed_by(folder, copy, replace("analysis/probe.py", option, option + ', metavar="N"')) == {
        "analysis/probe.py"}
    assert changed_by(folder, copy, replace("analysis/probe.py", 'help="hidden ReLU units of the probe',
                                            'help=HIDDEN + "')) == {"analysis/probe.py"}


def test_a_new_module_imported_by_a_command_joins_its_code(package):
    folder, copy = package
    (folder / "analysis/extra.py").write_text("VALUE = 1\n")
    with open(folder / "analysis/figures.py", "a") as f:
        f.write("\nfrom trifecta.analysis import extra  # noqa\n")
    assert "analysis/extra.py" in copy.package_imports("analysis/figures.py")


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


# Defined in training modules, though training never uses them: what the rest of the package reads there (the
# names of the registry and of a run's files, the dataset files that provenance hashes, the keys of keyed tables,
# what a longer run continues). Anything else used only by probes, figures, tables or commands belongs in their
# modules: the training folder holds what runs compute with, and nothing that only displays or plans.
TRAINING_NAMES_USED_ELSEWHERE = {"canonical_name", "settings_from_dict", "dataset_files", "FILES", "read_json",
                                 "sha256_file", "LIVE", "OWN_STORE", "run_keys", "continues", "continue_from",
                                 "format_value", "render_settings", "weight_key",
                                 "build_settings", "train_run", "RunState", "StopRequest"}  # what `trifecta train` runs


def test_training_modules_define_only_what_training_uses():
    """Names defined at a training module's top level and read (not only assigned) somewhere in the training folder."""
    defined, used = {}, set()
    for name in runcode.training_modules():
        tree = ast.parse((codehash.PACKAGE_DIR / name).read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined[node.name] = name
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined.update({t.id: name for t in targets if isinstance(t, ast.Name)})
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.ImportFrom):
                used |= {alias.name for alias in node.names}
    unused = {f"{module}: {name}" for name, module in defined.items()
              if name not in used and name not in TRAINING_NAMES_USED_ELSEWHERE and not name.startswith("__")}
    assert not unused, f"not used by training, move to the stage that uses it: {sorted(unused)}"
