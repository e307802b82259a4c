"""The registry: one home for datasets, architectures and algorithms; run ids; importable without torch; a new
dataset needs one entry there and one loader in data.py."""

import dataclasses
import subprocess
import sys

import pytest
import torch

from tests.conftest import small_spec
from trifecta.planning import paper
from trifecta.identity import codehash, runcode
from trifecta.planning.runs import Run
from trifecta.operations.train import train
from trifecta.training import data, registry

TORCH_FREE = ("training.registry", "training.settings", "training.rundir", "identity.codehash", "identity.runcode",
              "planning.runs", "planning.grid", "planning.paper", "planning.configfile", "planning.settings_help",
              "planning.runtimes", "planning.probing", "planning.figurejob", "identity.commands", "operations.status",
              "operations.why", "operations.store", "operations.gpus",
              "operations.lease")


def test_the_planning_modules_import_without_torch():
    """The rule files and `trifecta status` read these while planning or watching: with torch unavailable
    (importing it raises), they still import."""
    code = ("import sys; sys.modules['torch'] = None; sys.modules['pandas'] = None\n"
            + "".join(f"import trifecta.{m}\n" for m in TORCH_FREE) + "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


def test_training_code_imports_only_training_code():
    """The training folder is a run's code identity: what it computes with must be inside it."""
    for module in runcode.training_modules():
        outside = {m for m in codehash.package_imports(module) if not m.startswith("training/")}
        assert not outside, (module, outside)


def test_run_ids_and_directories():
    run = Run("cifar10", "s", "tff", 2)
    assert run.id == "cifar10/s/tff/seed2" and run.dir() == "results/train/cifar10/s/tff/seed2"
    for text in (run.id, run.dir(), run.dir("/scratch/x") + "/metrics.json"):
        assert Run.parse(text) == run
    with pytest.raises(ValueError, match="not a run id or run directory"):
        Run.parse("results/train/cifar10/s/tff")


def test_names_and_their_errors():
    assert registry.canonical_name("symba-bn-olu") == "tff" and registry.canonical_name("symba-bn") == "symba-bn"
    assert paper.algo_label("ftl10-ln-olu") == "FTL τ=10, layer norm, OLU"
    assert paper.algo_label("symba-bn") == "SymBa, batch norm" and paper.algo_label("tff").startswith("TFF")
    with pytest.raises(ValueError, match="unknown architecture 'x'; choose one of: s, d, f, t"):
        registry.get_arch("x")
    with pytest.raises(ValueError, match="algorithm 'fa' supports architectures f, t, not 'd'"):
        registry.check_combination("fa", "d")
    assert registry.ARCHS["s"].layers == 6 and registry.ARCHS["d"].pools == {2, 6, 10}


TINY = registry.Dataset("tinydigits", 4, (1, 8, 8), (0.5,), (0.25,), 64, 32)


class TinyDigits:
    """A loader: four classes of 8x8 images, each class brighter than the last."""

    def load(self, info, data_dir):
        def split(n, seed):
            labels = torch.arange(n) % 4
            noise = torch.randint(0, 40, (n, 1, 8, 8), generator=torch.Generator().manual_seed(seed))
            return data.Split((labels.view(-1, 1, 1, 1) * 60 + noise).to(torch.uint8).contiguous(), labels)
        return split(64, 0), split(32, 1)

    def paths(self, data_dir):
        return {}


def test_a_new_dataset_is_one_registry_entry_and_its_loader(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.DATASETS, TINY.name, TINY)
    monkeypatch.setitem(data.LOADERS, TINY.name, TinyDigits())
    spec = dataclasses.replace(small_spec(tmp_path / "run", overrides=["epochs=2", "width=0.25", "batch_size=16"]),
                               dataset="tinydigits")
    summary = train(spec)
    assert set(summary["evals"]) == {"2"} and 0 <= summary["evals"]["2"]["acc_last"] <= 1
