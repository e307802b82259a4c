"""A run's code identity (identity/runcode.py): the training definitions a run can execute.

The proof that it misses nothing: short CPU runs of every kind the registry allows (every dataset with every
architecture, every FF composition on a convolutional and a fully connected network, every baseline on every
dataset and each of its architectures) go through `train.train`, as `trifecta train` does, with every executed
function of training/ recorded (sys.setprofile) and every read of a keyed table; each must lie inside the run's
code identity, and no run may read another run's entry. The check is seen failing on an identity that lacks one
executed definition.
"""

import itertools
import shutil
import sys
import threading
from pathlib import Path

import pytest

from tests.fakedata import install_fake_datasets, write_fake_dataset
from trifecta.identity import runcode
from trifecta.identity.codehash import PACKAGE_DIR
from trifecta.operations.train import RunSpec, train
from trifecta.training.settings import build_settings
from trifecta.training.registry import ARCHS, BASELINES, DATASETS, Keyed, canonical_name, run_keys

TRAINING_DIR = str(PACKAGE_DIR / "training")
TINY = ["width=0.03", "batch_size=16", "subset_train=32", "subset_test=16", "eval_batch_size=64", "epochs=1",
        "snapshot_epochs=1", "checkpoint_every=1"]
FF_NAMES = sorted({canonical_name(f"{loss}-{norm}{olu}") for loss, norm, olu in
                   itertools.product(("ftl", "symba"), ("ln", "bn", "none"), ("", "-olu"))})
KINDS = sorted(
    {(dataset, arch, "tff") for dataset in DATASETS for arch in ARCHS}
    | {("mnist5k", arch, algo) for algo in FF_NAMES for arch in ("s", "f")}
    | {(dataset, arch, algo) for algo, baseline in BASELINES.items() for arch in baseline.archs for dataset in DATASETS})


class Trace:
    """The code objects of training/ that ran, and the keyed-table entries read, while installed."""

    def __init__(self, monkeypatch):
        self.code, self.reads = set(), []
        for name in ("__getitem__", "get"):
            original = getattr(dict, name)

            def read(table, key, *rest, _original=original):
                self.reads.append((table.by, key))
                return _original(table, key, *rest)
            monkeypatch.setattr(Keyed, name, read)
        for name in ("items", "values"):
            def whole(table, _name=name):
                self.reads.append((table.by, "*"))
                return getattr(dict, _name)(table)
            monkeypatch.setattr(Keyed, name, whole)

    def profile(self, frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(TRAINING_DIR):
            self.code.add(frame.f_code)

    def __enter__(self):
        sys.setprofile(self.profile)
        threading.setprofile(self.profile)
        return self

    def __exit__(self, *exc):
        sys.setprofile(None)
        threading.setprofile(None)


def executed_definitions(trace: Trace) -> set:
    """Each executed code object mapped back to the innermost definition around its first line."""
    found = set()
    for code in trace.code:
        module = Path(code.co_filename).relative_to(PACKAGE_DIR).as_posix()
        definition = runcode.definition_at(module, code.co_firstlineno)
        assert definition is not None, f"{module}:{code.co_firstlineno} {code.co_qualname} lies in no definition"
        found.add(definition)
    return found


def missed(executed: set, identity: set) -> list[str]:
    return sorted(d.key for d in executed - identity)


def foreign_reads(trace: Trace, keys: dict) -> list:
    return sorted({(by, key) for by, key in trace.reads if key != keys[by]})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name in DATASETS:
        if name != "mnist5k":
            write_fake_dataset(name, root, n_train=40, n_test=20)
    return root


def traced_run(tmp_path, monkeypatch, data_dir, dataset, arch, algo):
    """Train one epoch, then continue it to two, traced; returns (trace, the run's reached definitions)."""
    install_fake_datasets(monkeypatch)
    store = tmp_path / "store"
    trace = Trace(monkeypatch)
    for epochs in (1, 2):
        cfg = build_settings(overrides=[*TINY, f"epochs={epochs}"], algo=algo, dataset=dataset)
        spec = RunSpec(dataset, arch, algo, 0, tmp_path / f"run{epochs}", data_dir, cfg, device="cpu",
                       deterministic=True, store_dir=store)
        with trace:
            train(spec)
    return trace, runcode.reached(dataset, arch, algo)


@pytest.mark.parametrize("dataset, arch, algo", KINDS, ids=["/".join(kind) for kind in KINDS])
def test_a_run_executes_only_code_of_its_identity(tmp_path, monkeypatch, data_dir, dataset, arch, algo):
    trace, identity = traced_run(tmp_path, monkeypatch, data_dir, dataset, arch, algo)
    executed = executed_definitions(trace)
    assert len(executed) > 50
    assert missed(executed, identity) == []
    assert foreign_reads(trace, run_keys(dataset, arch, algo)) == []


def test_the_check_fails_on_an_identity_that_lacks_executed_code(tmp_path, monkeypatch, data_dir):
    trace, identity = traced_run(tmp_path, monkeypatch, data_dir, "mnist5k", "t", "pep")
    executed = executed_definitions(trace)
    step = next(d for d in identity if d.name == "PEPITATrainer.train_step")
    too_small = identity - {step}
    assert missed(executed, too_small) == ["training/algorithms/pepita.py:PEPITATrainer.train_step"]
    assert foreign_reads(trace, run_keys("mnist5k", "t", "fa")) != []  # another run's keys: its entries are foreign


# ---- What an edit changes: the analysis of a copy of the package ----

RUNS = [("mnist5k", "s", "tff"), ("mnist5k", "s", "vff"), ("mnist5k", "s", "symba-bn"), ("mnist5k", "f", "fa"),
        ("mnist5k", "t", "pep"), ("mnist5k", "d", "bp"), ("cifar10", "s", "tff"), ("cifar10", "d", "bp")]


@pytest.fixture
def package(tmp_path):
    """A copy of the package to edit."""
    copy = tmp_path / "trifecta"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def identities(root) -> dict:
    return {run: runcode.run_code(*run, root=root).sha256 for run in RUNS}


def edit(root, module, old, new):
    path = root / module
    text = path.read_text()
    assert old in text, (module, old)
    path.write_text(text.replace(old, new, 1))


def changed_runs(root, module, old, new) -> set:
    before = identities(root)
    edit(root, module, old, new)
    after = identities(root)
    return {run for run in RUNS if before[run] != after[run]}


FF_RUNS = {("mnist5k", "s", "tff"), ("mnist5k", "s", "vff"), ("mnist5k", "s", "symba-bn"), ("cifar10", "s", "tff")}
STATEMENT = "        x = 1\n"


@pytest.mark.parametrize("module, old, new, changed", [
    # a statement added to one method: the runs that can execute it
    ("training/algorithms/pepita.py", "        x = self.pixels(images)\n", STATEMENT + "        x = self.pixels(images)\n",
     {("mnist5k", "t", "pep")}),
    ("training/algorithms/fa.py", "        x, feedback = ctx.saved_tensors\n",
     "        x, feedback = ctx.saved_tensors\n" + STATEMENT, {("mnist5k", "f", "fa")}),
    ("training/algorithms/bp.py", "        with self.recipe.autocast_context(self.autocast):\n            loss",
     STATEMENT + "        with self.recipe.autocast_context(self.autocast):\n            loss",
     {("mnist5k", "f", "fa"), ("mnist5k", "d", "bp"), ("cifar10", "d", "bp")}),  # PEPITA has its own train_step
    ("training/algorithms/ff.py", "        neg = wrong_labels(", STATEMENT + "        neg = wrong_labels(", FF_RUNS),
    ("training/loop.py", "    for images, labels in loader:\n", "    x = 1\n    for images, labels in loader:\n",
     set(RUNS)),
    # an entry of a keyed table: only the runs it is keyed by
    ("training/registry.py", '    Arch("t", False, (2000,) * 4),\n',
     '    Arch("t", False, (2000,) * 4),\n    Arch("w", False, (4096,) * 2),\n', set()),
    ("training/registry.py", '(0.2023, 0.1994, 0.2010)', '(0.2470, 0.2435, 0.2616)',
     {("cifar10", "s", "tff"), ("cifar10", "d", "bp")}),
    ("training/data.py", '    "mnist5k": Mnist5k(),\n', '    "mnist5k": Mnist5k(),\n    "kmnist": Mnist5k(),\n', set()),
    # comments, docstrings and a renamed local change nothing
    ("training/settings.py", 'help="training epochs"', 'help="epochs of training"', set()),  # a setting's help text
    ("training/loop.py", "    cfg = spec.cfg\n", "    cfg = spec.cfg  # the settings\n", set()),
    ("training/algorithms/pepita.py", '"""Inverted dropout on the hidden units, one mask for both passes."""',
     '"""Inverted dropout."""', set()),
    ("training/algorithms/pepita.py", "        keep = torch.rand(size, generator=generator, device=generator.device) "
     ">= self.dropout\n        return keep.float()", "        kept = torch.rand(size, generator=generator, "
     "device=generator.device) >= self.dropout\n        return kept.float()", set()),
])
def test_an_edit_changes_the_identity_of_exactly_the_runs_that_can_execute_it(package, module, old, new, changed):
    assert changed_runs(package, module, old, new) == changed


def test_a_definition_moved_to_another_module_changes_no_identity(package):
    before = identities(package)
    source = (package / "training/data.py").read_text()
    block = source[source.index("def batch_indices("):source.index("class DeviceLoader:")]
    (package / "training/data.py").write_text(source.replace(block, "").replace(
        "from trifecta.training.registry import", "from trifecta.training.batching import batch_indices\n"
        "from trifecta.training.registry import"))
    (package / "training/batching.py").write_text('"""Batches."""\n\nimport torch\n\n\n' + block)
    assert identities(package) == before
    moved = runcode.run_code("mnist5k", "s", "tff", root=package).definitions
    assert "training/batching.py:batch_indices" in moved and "training/data.py:batch_indices" not in moved


def test_the_definitions_of_a_run_name_module_and_definition(package):
    code = runcode.run_code("mnist5k", "t", "pep", root=package)
    assert "training/algorithms/pepita.py:PEPITATrainer.train_step" in code.definitions
    assert "training/algorithms/bp.py:BPTrainer.train_step" not in code.definitions  # overridden
    assert "training/algorithms/ff.py:FFTrainer.train_step" not in code.definitions
    assert "training/registry.py:DATASETS['mnist5k']" in code.definitions
    assert not any("DATASETS['cifar10']" in key for key in code.definitions)
    assert all(key.startswith("training/") for key in code.definitions)


def test_a_keyed_table_the_analysis_cannot_read_is_an_error(package):
    edit(package, "training/registry.py", 'PRESETS = Keyed("algo", {"vff": "ftl2-ln", "tff": "symba-bn-olu"})',
         'PRESETS = Keyed("algo", dict(vff="ftl2-ln", tff="symba-bn-olu"))')
    with pytest.raises(ValueError, match=r"training/registry.py, line \d+: a keyed table must be"):
        runcode.run_code("mnist5k", "s", "tff", root=package)


def test_a_modules_main_guard_is_not_code_a_run_executes(package):
    """`if __name__ == "__main__":` never runs on import: what only it calls is no run's code."""
    before = identities(package)
    with open(package / "training/loop.py", "a") as f:
        f.write('\n\ndef only_by_hand():\n    return 1\n\n\nif __name__ == "__main__":\n    only_by_hand()\n')
    assert identities(package) == before
