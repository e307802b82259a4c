"""The run store (operations/store.py): a longer run continues a finished shorter one."""

import json

import pytest

from tests.conftest import SMALL, small_spec
from trifecta.operations.train import train
from trifecta.training import loop
from trifecta.training.settings import build_settings

LOGS = ("steps.csv", "eval.csv", "ensemble.csv", "metrics.json")


def epochs_trained(monkeypatch) -> list:
    """The epochs train_epoch is called for, from now on."""
    calls = []
    original = loop.train_epoch

    def counted(trainer, loader, *args, **kwargs):
        calls.append(loader.step)
        return original(trainer, loader, *args, **kwargs)
    monkeypatch.setattr(loop, "train_epoch", counted)
    return calls


def test_a_longer_run_continues_the_finished_shorter_one_byte_for_byte(tmp_path, monkeypatch):
    """epochs 2 -> 3: one epoch trained, and the files of a 3-epoch run trained from scratch (--deterministic)."""
    store = tmp_path / "store"
    short = small_spec(tmp_path / "short", overrides=[*SMALL, "epochs=2", "snapshot_epochs=1"], store_dir=store)
    train(short)
    longer = small_spec(tmp_path / "long", overrides=[*SMALL, "epochs=3", "eval_epochs=2", "snapshot_epochs=1"],
                        store_dir=store)
    calls = epochs_trained(monkeypatch)
    train(longer)
    assert len(calls) == 1
    scratch = small_spec(tmp_path / "scratch", overrides=[*SMALL, "epochs=3", "eval_epochs=2", "snapshot_epochs=1"],
                         store_dir=tmp_path / "other-store")
    train(scratch)
    assert len(calls) == 4
    for name in LOGS:
        assert (longer.out_dir / name).read_bytes() == (scratch.out_dir / name).read_bytes(), name
    record = json.loads((longer.out_dir / "run.json").read_text())
    assert record["continued_from"]["identity_sha256"] == short.identity_hash
    assert record["continued_from"]["epochs"] == 2
    assert list(record["snapshots"]) == ["1", "3"] and list(record["epoch_wall_s"]) == ["1", "2", "3"]
    assert "continued_from" not in json.loads((scratch.out_dir / "run.json").read_text())


@pytest.mark.parametrize("longer, continues", [
    (["epochs=3"], True),
    (["epochs=3", "eval_epochs=3"], True),  # the shorter run's evaluation at its end is left out
    (["epochs=5", "eval_epochs=4", "snapshot_epochs=5"], True),
    (["epochs=3", "lr_schedule=0:1e-3,2:1e-4"], True),  # the rate changes after the shorter run's end
    (["epochs=2"], False),  # not longer
    (["epochs=3", "lr_schedule=0:1e-3,1:1e-4"], False),  # another rate before its end
    (["epochs=3", "eval_epochs=1"], False),  # an evaluation it did not make
    (["epochs=3", "snapshot_epochs=1"], False),  # a snapshot it did not keep
    (["epochs=3", "width=0.25"], False),
    (["epochs=3", "batch_size=32"], False),
    (["epochs=3", "checkpoint_every=1", "eval_batch_size=64", "precision=bf16"], True),  # speed, safety; recipe apart
])
def test_what_a_longer_run_continues(longer, continues):
    shorter = build_settings(overrides=["epochs=2", "eval_epochs=2"])
    assert build_settings(overrides=longer).continues(shorter) is continues
