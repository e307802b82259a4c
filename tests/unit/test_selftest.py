"""`trifecta selftest`: every algorithm family's training step under the run's recipe and under the GPU recipe
(bfloat16, channels-last, fused Adam) on the CPU, the score check, failures named, and (`-m gpu`) the CUDA path."""

import json

import pytest
import torch

from trifecta.operations import selftest
from trifecta.cli import main as cli
from trifecta.training.algorithms.ff import FFTrainer


def test_selftest_command_passes_on_the_cpu_and_lists_every_family(tmp_path, capsys):
    out = tmp_path / "selftest.json"
    assert cli(["selftest", "--device", "cpu", "--json", str(out)]) == 0, capsys.readouterr()
    report = json.loads(out.read_text())
    assert list(report["families"]) == ["tff/s", "vff/d", "bp/d", "fa/f", "pep/t"] and report["failures"] == []
    assert report["device"]["type"] == "cpu" and report["recipe"]["precision"] == "fp32"
    for name, family in report["families"].items():
        assert family["loss_last"] < family["loss_first"], name
        assert family["scores"]["argmax_agreement"] >= 0.9 and family["scores"]["tolerance_used"] <= 1, name
    assert report["versions"]["torch"] == torch.__version__
    assert "0 failures" in capsys.readouterr().out


@pytest.mark.parametrize("algo, arch", selftest.FAMILIES)
def test_every_family_trains_under_the_gpu_recipe_on_the_cpu(algo, arch):
    """bfloat16 autocast, channels-last and fused Adam on the CPU: the lines a GPU run executes, run here first."""
    result = selftest.loss_falls(algo, arch, torch.device("cpu"), "bf16")
    assert result["recipe"] == "bf16" and result["loss_last"] < result["loss_first"]


def test_a_family_that_does_not_learn_is_a_named_failure(monkeypatch, tmp_path, capsys):
    def frozen(self, images, labels, iteration, generator):
        return torch.ones(self.num_layers, len(self.step_metrics))
    monkeypatch.setattr(FFTrainer, "train_step", frozen)
    assert cli(["selftest", "--device", "cpu", "--json", str(tmp_path / "r.json")]) == 1
    err = capsys.readouterr().err
    assert "FAIL tff/s: the loss did not fall in 8 steps on one batch" in err and "FAIL vff/d" in err
    assert "bp/d" not in err
    assert len(json.loads((tmp_path / "r.json").read_text())["failures"]) == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_asking_for_cuda_without_a_gpu_fails_naming_it(capsys):
    """What a GPU job's preflight sees on a node whose GPU torch cannot use."""
    assert cli(["selftest", "--device", "cuda"]) == 1
    assert "--device cuda was requested but no CUDA device is available" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_selftest_passes_on_cuda():
    """`pytest -m gpu`: the same checks as `trifecta selftest --device cuda`, host syncs included."""
    report = selftest.selftest(torch.device("cuda"))
    assert report["failures"] == [], report["failures"]
    assert all(family["host_sync"] is None for family in report["families"].values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_a_job_given_a_gpu_it_cannot_use_fails(monkeypatch, capsys, tmp_path):
    """SLURM sets CUDA_VISIBLE_DEVICES for a --gpus job: if torch sees no device there, training would run on the
    node's CPU for days; the preflight says so instead (the CI cluster's fake GPUs are such a case)."""
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert cli(["selftest", "--json", str(tmp_path / "r.json")]) == 1
    assert "FAIL this job was given GPU(s) (CUDA_VISIBLE_DEVICES=0) but torch" in capsys.readouterr().err
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert selftest.unusable_gpu(torch.device("cpu")) is None


def test_a_job_given_no_gpu_is_not_failed_by_the_machines_gpus(monkeypatch, capsys, tmp_path):
    """`gpu: 0` (the embedded default) on a workstation that sets CUDA_VISIBLE_DEVICES: the CPU by choice."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(selftest, "FAMILIES", [])  # only the device check
    assert cli(["selftest", "--gpus", "0", "--json", str(tmp_path / "r.json")]) == 0
    assert cli(["selftest", "--gpus", "1", "--json", str(tmp_path / "r.json")]) == 1 or torch.cuda.is_available()


# ---- The preflight of new code, before a run trains ----

def stub_selftest(monkeypatch, failures=()):
    """A selftest that passes (or fails with `failures`) at once; returns the list of its calls."""
    calls = []

    def run(device, gpus=None):
        calls.append(device.type)
        return {"device": {"type": device.type}, "families": {}, "failures": list(failures)}
    monkeypatch.setattr(selftest, "selftest", run)
    return calls


def test_a_run_of_edited_code_runs_the_selftest_before_it_trains(tmp_path, monkeypatch):
    """The report is of other code (training code edited since it was made): the run tests the new code first,
    once; the next run finds the report of its code and trains at once."""
    from tests.conftest import SMALL, small_spec
    from trifecta.operations.train import train

    report = tmp_path / "preflight/report.json"
    report.parent.mkdir()
    report.write_text(json.dumps({"code": "0" * 64, "failures": [], "host": "old"}))
    calls = stub_selftest(monkeypatch)
    for seed in (0, 1):
        train(small_spec(tmp_path / f"run{seed}", seed=seed, overrides=[*SMALL, "epochs=1"], preflight=report))
    assert calls == ["cpu"]
    assert json.loads(report.read_text())["code"] == selftest.command_code("selftest")


def test_a_failed_selftest_of_new_code_trains_nothing(tmp_path, monkeypatch):
    """It fails the run before its first epoch, naming the failure and the report, and every other run of that
    code after it, without running the selftest again."""
    from tests.conftest import SMALL, small_spec
    from trifecta.operations.train import train

    report = tmp_path / "preflight/report.json"
    calls = stub_selftest(monkeypatch, ["tff/s: the loss did not fall"])
    for seed in (0, 1):
        spec = small_spec(tmp_path / f"run{seed}", seed=seed, overrides=[*SMALL, "epochs=1"], preflight=report)
        with pytest.raises(selftest.PreflightFailed, match=f"tff/s: the loss did not fall.*see {report}"):
            train(spec)
        record = json.loads((spec.out_dir / "run.json").read_text())
        assert record["status"] == "failed" and record["phase"] == "start-up" and record["epoch_wall_s"] == {}
        assert not (spec.out_dir / "metrics.json").exists()
    assert calls == ["cpu"]
