"""`trifecta why`: what differs between the identity a run directory shows and the one the config, the code and
the data give it now; whether the next job shows a stored identity, continues one or trains from epoch 1."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.fakedata import write_fake_dataset
from trifecta.operations import why
from trifecta.planning.grid import Grid
from trifecta.planning.configfile import load_config
from trifecta.planning.runs import Run
from trifecta.operations.train import RunSpec, train

REPO = Path(__file__).resolve().parents[2]
SETTINGS = {"epochs": 1, "width": 0.0625, "batch_size": 64, "subset_train": 256, "subset_test": 100}


class Workdir:
    """A workflow's folders in tmp_path: config overlay, data, run directories, store."""

    def __init__(self, root: Path):
        self.root = root
        self.data, self.store, self.train_dir = root / "data", root / "store", root / "results/train"
        write_fake_dataset("mnist", self.data, n_train=256, n_test=100)
        self.settings = dict(SETTINGS)

    def write_config(self) -> Path:
        overlay = {"data_dir": str(self.data), "store_dir": str(self.store), "resources": {"gpu": 0},
                   "runs": [{"name": "one", "datasets": ["mnist"], "archs": ["s"], "algos": ["tff"], "seeds": [0],
                             "settings": self.settings}]}
        path = self.root / "overlay.yaml"
        path.write_text(yaml.safe_dump(overlay))
        return path

    def train(self) -> RunSpec:
        """Train the run as the workflow would with the current settings."""
        grid = Grid.from_config(load_config([REPO / "config.yaml", self.write_config()]))
        run = Run("mnist", "s", "tff", 0)
        spec = RunSpec("mnist", "s", "tff", 0, Path(run.dir(str(self.train_dir))), self.data, grid.settings(run),
                       device="cpu", deterministic=True, store_dir=self.store)
        train(spec)
        return spec

    def why(self, capsys) -> list[str]:
        args = ["--config", str(REPO / "config.yaml"), "--configfile", str(self.write_config()),
                "--train-dir", str(self.train_dir)]
        assert why.main(args) == 0
        return capsys.readouterr().out.splitlines()


@pytest.fixture
def work(tmp_path, monkeypatch):
    from tests.fakedata import install_fake_datasets
    install_fake_datasets(monkeypatch)
    return Workdir(tmp_path)


def test_an_untrained_run_and_an_up_to_date_one(work, capsys):
    assert work.why(capsys) == ["mnist/s/tff/seed0: not trained yet"]
    spec = work.train()
    assert work.why(capsys) == [f"mnist/s/tff/seed0: up to date (identity {spec.identity_hash})"]


def test_a_changed_setting_and_a_reverted_one(work, capsys):
    first = work.train()
    work.settings["width"] = 0.125
    lines = work.why(capsys)
    assert lines[0].startswith("mnist/s/tff/seed0: trains from epoch 1 (identity ")
    assert lines[1:] == ["  setting width: 0.0625 -> 0.125"]
    work.train()
    work.settings["width"] = 0.0625  # back: that identity is complete in the store
    assert work.why(capsys) == [f"mnist/s/tff/seed0: in the store: identity {first.identity_hash} is complete there "
                                "and is shown again without training", "  setting width: 0.125 -> 0.0625"]


def test_a_changed_definition_is_named_by_module_and_name(work, capsys):
    """The run directory shows a run of older code: one definition the run executes differed then."""
    spec = work.train()
    step = "training/algorithms/ff.py:FFTrainer.train_step"
    for name in ("metrics.json", "run.json"):
        path = spec.out_dir / name
        record = json.loads(path.read_text())
        identity = record.get("identity", record)
        identity["training_code"] = "0" * 64
        if name == "run.json":
            record["training_code_definitions"][step] = "0" * 16
            del record["training_code_definitions"]["training/loop.py:train_epoch"]
            record["training_code_definitions"]["training/loop.py:gone"] = "1" * 16
        path.write_text(json.dumps(record))
    lines = work.why(capsys)  # the store still holds the run of the code now
    assert lines[0] == (f"mnist/s/tff/seed0: in the store: identity {spec.identity_hash} is complete there and is "
                        "shown again without training")
    shutil.rmtree(work.store / spec.identity_hash)
    lines = work.why(capsys)
    assert lines[0].startswith("mnist/s/tff/seed0: trains from epoch 1")
    assert lines[1:] == [f"  code {step}: changed", "  code training/loop.py:gone: no longer executed",
                         "  code training/loop.py:train_epoch: now executed"]


def test_a_changed_data_file_is_named(work, capsys):
    work.train()
    images = work.data / "MNIST/raw/train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-1] + b"\x07")
    lines = work.why(capsys)
    assert lines[0].startswith("mnist/s/tff/seed0: trains from epoch 1")
    assert len(lines) == 2 and lines[1].startswith("  data MNIST/raw/train-images-idx3-ubyte: sha256 ")


def test_a_longer_run_continues_and_says_so(work, capsys):
    short = work.train()
    work.settings["epochs"] = 2
    lines = work.why(capsys)
    assert lines[0].startswith(f"mnist/s/tff/seed0: continues identity {short.identity_hash} after its 1 epochs: "
                               "trains epochs 2..2")
    assert "  setting epochs: 1 -> 2" in lines
    longer = work.train()
    assert work.why(capsys) == [f"mnist/s/tff/seed0: up to date (identity {longer.identity_hash})",
                                f"  shown run continued identity {short.identity_hash} after its 1 epochs"]


def test_why_imports_no_torch():
    code = "import sys, trifecta.operations.why; assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
