"""Whole training runs on the embedded digits: outputs, determinism, resume, restarts, signals, errors."""

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import (REFERENCE, SMALL, copy_run, drop_resumes, read_rows, signal_on_call, small_spec,
                            store_of, unfinish)
from trifecta.operations import status
from trifecta.cli import main as cli
from trifecta.operations.train import RunSpec, train
from trifecta.training import checkpoint, data, loop
from trifecta.training.algorithms.ff import FFTrainer
from trifecta.training.settings import build_settings
from trifecta.training.loop import divergence
from trifecta.training.recipe import Recipe
from trifecta.training.registry import DatasetError
from trifecta.training.runstate import Diverged, TrainingInterrupted


def epochs_done(run_dir) -> dict:
    """The epochs that run.json in a run directory says are done (none while it is not written)."""
    try:
        return json.loads((run_dir / "run.json").read_text())["epoch_wall_s"]
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def assert_same_logs(spec, reference):
    for name in ("steps.csv", "eval.csv", "ensemble.csv"):
        assert read_rows(spec.out_dir / name) == read_rows(reference.out_dir / name), name
    assert json.loads((spec.out_dir / "metrics.json").read_text())["evals"] == \
        json.loads((reference.out_dir / "metrics.json").read_text())["evals"]


# ---- A run and its files ----

def test_outputs(reference_run):
    out = reference_run.out_dir
    summary = json.loads((out / "metrics.json").read_text())
    assert set(summary["evals"]) == {"1", "3"}
    assert len(summary["evals"]["3"]["acc_layers"]) == 6 and "acc_last3" in summary["evals"]["3"]
    steps = read_rows(out / "steps.csv")
    assert len(steps) == 3 * (512 // 64) * 6
    assert set(steps[0]) == {"epoch", "step", "layer", "loss", "separation", "g_pos", "g_neg", "grad_norm"}
    evals = read_rows(out / "eval.csv")
    assert [(r["epoch"], r["layer"]) for r in evals][:2] == [("1", "1"), ("1", "2")] and len(evals) == 12
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "complete" and record["seed"] == 0 and record["settings"]["epochs"] == 3
    for key in ("git", "source_sha256", "versions", "device", "host", "slurm_job_id", "data",
                "started", "finished", "epoch_wall_s", "training_code", "recipe"):
        assert key in record
    assert "data_sha256" not in record and "training_code_sha256" not in record  # the identity's, once
    assert record["recipe"]["precision"] == "fp32" and list(record["epoch_wall_s"]) == ["1", "2", "3"]
    listing = Path(record["environment"]["file"])  # every installed distribution, kept once per environment
    assert listing.parent == store_of(reference_run).parent / "environments"
    assert hashlib.sha256(listing.read_bytes()).hexdigest() == record["environment"]["sha256"]
    assert f"torch=={importlib.metadata.version('torch')}" in listing.read_text().splitlines()
    assert record["gpu"] is None and record["gpu_slots"] is None  # a CPU job given no GPU
    assert set(record["snapshots"]) == {"1", "3"}  # model weights kept for later analyses
    kept = sorted(p.name for p in store_of(reference_run).glob("*.pt"))
    assert kept == ["resume_epoch_0002.pt", "resume_epoch_0003.pt", "snapshot_epoch_0001.pt", "snapshot_epoch_0003.pt"]


def test_same_seed_same_metrics_and_other_seed_differs(reference_run, tmp_path):
    again = small_spec(tmp_path / "again")
    other = small_spec(tmp_path / "other", seed=1)
    train(again), train(other)
    assert_same_logs(again, reference_run)
    assert read_rows(other.out_dir / "steps.csv") != read_rows(reference_run.out_dir / "steps.csv")


def test_the_log_has_a_line_per_epoch_and_per_checkpoint(tmp_path, caplog):
    caplog.set_level("INFO", logger="trifecta.train")
    train(small_spec(tmp_path / "run"))
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("run ") and "epochs 1..3 of 3" in lines[0]
    epochs = [line for line in lines if line.startswith("epoch ") and "/3: loss" in line]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("last-layer separation" in line and " s, lr 0.001, ETA " in line for line in epochs)
    assert sum(line.startswith("checkpoint ") for line in lines) == 3
    assert sum(line.startswith("snapshot of epoch") for line in lines) == 2


# ---- Resume and restart ----

def test_resume_gives_the_uninterrupted_result(reference_run, tmp_path):
    # A job killed during epoch 3: its resume checkpoint never landed, so the run resumes from epoch 2
    # (the logs of epoch 3, if written, are dropped and redone).
    part = copy_run(reference_run, tmp_path / "part")
    drop_resumes(part, keep=lambda name, entry: entry["epoch"] < 3)
    train(part)
    assert_same_logs(part, reference_run)
    assert json.loads((part.out_dir / "run.json").read_text())["resumes"][-1]["from_epoch"] == 2


def test_corrupt_checkpoint_is_skipped_not_loaded(reference_run, tmp_path, caplog):
    run = copy_run(reference_run, tmp_path / "run")
    unfinish(run)
    last = store_of(run) / "resume_epoch_0003.pt"
    last.write_bytes(last.read_bytes()[:100])  # truncated by a crash or a full disk
    with pytest.raises(checkpoint.CheckpointError, match="corrupt"):
        checkpoint.load_checkpoint(last)
    train(run)
    assert "resume_epoch_0003.pt is corrupt" in caplog.text
    assert json.loads((run.out_dir / "run.json").read_text())["resumes"][-1]["from_epoch"] == 2
    assert_same_logs(run, reference_run)


@pytest.mark.parametrize("how", ["no checkpoint folder", "index without resume checkpoints",
                                 "every resume checkpoint corrupt"])
def test_a_restart_from_epoch_0_starts_with_empty_logs(reference_run, tmp_path, how):
    """Whatever the reason a run starts again at epoch 0, its logs do not keep the rows of the earlier attempt."""
    run = copy_run(reference_run, tmp_path / "run")
    if how == "no checkpoint folder":
        unfinish(run)
        for path in store_of(run).glob("*.pt"):
            path.unlink()
        (store_of(run) / "index.json").unlink()
    elif how == "index without resume checkpoints":  # e.g. checkpoint_every=0, killed after a snapshot
        drop_resumes(run)
    else:
        unfinish(run)
        for path in store_of(run).glob("resume_*.pt"):
            path.write_bytes(b"garbage")
    train(run)
    assert len(read_rows(run.out_dir / "eval.csv")) == 12  # 2 evaluations x 6 layers, not 24
    assert len(read_rows(run.out_dir / "steps.csv")) == 3 * 8 * 6
    assert_same_logs(run, reference_run)
    assert json.loads((run.out_dir / "run.json").read_text())["resumes"] == []


def test_complete_run_is_not_retrained(reference_run, tmp_path):
    run = copy_run(reference_run, tmp_path / "run")
    stamp = (run.out_dir / "steps.csv").stat().st_mtime_ns
    train(run)
    assert (run.out_dir / "steps.csv").stat().st_mtime_ns == stamp


def test_the_same_out_with_other_settings_is_a_new_run(reference_run, tmp_path):
    run = copy_run(reference_run, tmp_path / "run")
    other = small_spec(run.out_dir, overrides=[*SMALL, "epochs=2"])
    summary = train(other)
    assert set(summary["evals"]) == {"2"} and summary["identity"]["settings"]["epochs"] == 2
    assert {r["epoch"] for r in read_rows(run.out_dir / "eval.csv")} == {"2"}  # nothing of the 3-epoch run
    assert len(read_rows(run.out_dir / "steps.csv")) == 2 * 8 * 6
    record = json.loads((run.out_dir / "run.json").read_text())
    assert record["identity_sha256"] == other.identity_hash and record["resumes"] == []


def test_a_corrupt_checkpoint_index_is_an_error_that_names_it(reference_run, tmp_path):
    run = copy_run(reference_run, tmp_path / "run")
    unfinish(run)
    (store_of(run) / "index.json").write_text("{not json")
    with pytest.raises(checkpoint.CheckpointError, match=r"index.json is corrupt .*delete it to start the run again"):
        train(run)
    assert len(read_rows(run.out_dir / "eval.csv")) == 12  # nothing already computed is lost


# ---- Results bound to their identity (issue 19) ----

def files_of(run_dir) -> dict:
    return {name: (run_dir / name).read_bytes() for name in ("steps.csv", "eval.csv", "ensemble.csv", "metrics.json")}


def test_a_reverted_setting_shows_its_own_results_without_training(reference_run, tmp_path, caplog):
    """X, then Y in the same run directory, then X again: X's results, byte for byte, and no epoch trained."""
    run = copy_run(reference_run, tmp_path / "run")  # X, complete
    other = small_spec(run.out_dir, overrides=[*REFERENCE, "lr_schedule=0:0.01"])  # Y
    train(other)
    assert json.loads((run.out_dir / "metrics.json").read_text())["identity_sha256"] == other.identity_hash
    caplog.clear()
    caplog.set_level("INFO", logger="trifecta.train")
    back = small_spec(run.out_dir)
    summary = train(back)
    assert files_of(run.out_dir) == files_of(reference_run.out_dir)
    assert summary["identity_sha256"] == reference_run.identity_hash
    assert not [r for r in caplog.records if r.getMessage().startswith(("epoch ", "resuming", "run "))]
    assert f"identity {back.identity_hash} is complete" in caplog.text


def test_a_lost_run_directory_is_rebuilt_from_its_store(reference_run, tmp_path):
    """The workflow's layout (the store outside results/): a deleted run directory comes back complete and the
    same, whether its run had finished or was interrupted."""
    finished = small_spec(tmp_path / "results/done", store_dir=tmp_path / "store")
    train(finished)
    shutil.rmtree(finished.out_dir)
    train(finished)
    assert files_of(finished.out_dir) == files_of(reference_run.out_dir)

    stopped = small_spec(tmp_path / "results/cut", seed=0, store_dir=tmp_path / "store2")
    with pytest.MonkeyPatch.context() as m:
        signal_on_call(m, FFTrainer, "train_step", 8 * 2 + 3)  # epoch 3, step 3
        with pytest.raises(TrainingInterrupted):
            train(stopped)
    shutil.rmtree(stopped.out_dir)
    train(stopped)
    assert_same_logs(stopped, reference_run)  # every epoch's rows, not only those trained after the loss
    assert set(json.loads((stopped.out_dir / "metrics.json").read_text())["evals"]) == {"1", "3"}


def test_two_processes_on_one_run_write_each_row_once(tmp_path):
    """Two `trifecta train` of the same run a second apart (a restarted workflow resubmits a running job): the
    second waits for the first, names it, and finishes from its results; every log row is there once."""
    settings = [*SMALL, "subset_train=2048", "epochs=5", "eval_epochs=1,5"]
    command = [sys.executable, "-m", "trifecta.cli", "train", "--dataset", "mnist5k", "--arch", "s", "--algo", "tff",
               "--seed", "0", "--device", "cpu", "--deterministic", "--threads", "1", "--data-dir", str(tmp_path),
               "--out", str(tmp_path / "d"), *[f"--set={s}" for s in settings]]
    first = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    while first.poll() is None and not (tmp_path / "d/run.json").exists():  # it has started
        time.sleep(0.02)
    second = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert second.wait(timeout=300) == 0 and first.wait(timeout=300) == 0
    said = second.stderr.read()
    assert f"waiting for the run directory: held by {os.uname().nodename} pid {first.pid}" in said
    assert "is complete in" in said and "epoch 1/5" not in said  # it trained nothing
    evals = read_rows(tmp_path / "d/eval.csv")
    assert len(evals) == 12 and len({(r["epoch"], r["layer"]) for r in evals}) == 12
    steps = read_rows(tmp_path / "d/steps.csv")
    assert len(steps) == 5 * 32 * 6 and len({(r["step"], r["layer"]) for r in steps}) == len(steps)
    summary = json.loads((tmp_path / "d/metrics.json").read_text())
    assert {e: len(v["acc_layers"]) for e, v in summary["evals"].items()} == {"1": 6, "5": 6}


# ---- Divergence (issue 19) ----

def test_a_diverging_run_fails_where_it_diverged(tmp_path, caplog):
    """A finite but absurd rate: the first non-finite loss fails the run; no metrics.json, status says failed."""
    run = small_spec(tmp_path / "train/mnist5k/s/tff/seed0", overrides=[*REFERENCE, "lr_schedule=0:1e30"])
    with pytest.raises(Diverged, match=r"diverged at epoch 1, step \d+, layer \d+: (loss|g_pos|g_neg) = (nan|inf)"):
        train(run)
    record = json.loads((run.out_dir / "run.json").read_text())
    where = record["diverged"]
    assert record["status"] == "failed" and where["epoch"] == 1 and where["what"] in ("loss", "g_pos", "g_neg")
    assert 0 <= where["step"] < 8 and 1 <= where["layer"] <= 6 and where["value"] in ("nan", "inf", "-inf")
    assert not (run.out_dir / "metrics.json").exists() and not (store_of(run) / "metrics.json").exists()
    assert "no metrics.json is written" in caplog.text
    [row] = status.collect(None, tmp_path / "train")
    assert row["state"] == "failed" and row["note"].startswith("diverged at epoch 1, step ")


def test_a_non_finite_weight_is_divergence_even_with_finite_losses():
    trainer = FFTrainer("tff", data.DATASETS["mnist5k"], "s", build_settings(overrides=["width=0.0625"]),
                        Recipe.for_run(torch.device("cpu")))
    values = torch.zeros(4, trainer.num_layers, len(trainer.step_metrics))
    values[:, 2:, 4] = float("nan")  # resting layers' gradient norms: no divergence
    assert divergence(trainer, values, 3, 24) is None
    values[2, 1, 0] = float("inf")
    assert divergence(trainer, values, 3, 24) == {"epoch": 3, "step": 26, "layer": 2, "what": "loss", "value": "inf"}
    values[2, 1, 0] = 0.5
    with torch.no_grad():
        trainer.net.layers[4].weight.weight[0, 0, 0, 0] = float("nan")
    assert divergence(trainer, values, 3, 24) == {"epoch": 3, "what": "weight layers.4.weight.weight", "value": "nan"}


# ---- Failures leave honest records (issue 19) ----

def test_a_run_that_fails_before_training_says_so_in_run_json(tmp_path):
    """A dataset that is not there: run.json says failed (with the error), so status does not show it pending."""
    cfg = build_settings(overrides=SMALL)
    spec = RunSpec("mnist", "s", "tff", 0, tmp_path / "train/mnist/s/tff/seed0", tmp_path / "data", cfg, device="cpu")
    with pytest.raises(DatasetError):
        train(spec)
    record = json.loads((spec.out_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["phase"] == "start-up"
    assert record["error"].startswith("DatasetError: dataset 'mnist' in ") and "cannot read" in record["error"]
    [row] = status.collect(None, tmp_path / "train")
    assert row["state"] == "failed" and row["note"].startswith("DatasetError")


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    def full_disk(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError, match="No space left"):
        checkpoint.write_atomic(tmp_path / "run.json", full_disk)
    assert list(tmp_path.iterdir()) == []


# ---- Signals: SLURM's time-limit warning, preemption, scancel ----

def interrupted(spec) -> dict:
    with pytest.raises(TrainingInterrupted, match="run the same command to resume"):
        train(spec)
    record = json.loads((spec.out_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and not (spec.out_dir / "metrics.json").exists()
    return checkpoint.read_index(store_of(spec))


def test_sigusr1_mid_epoch_checkpoints_the_partial_epoch(reference_run, tmp_path, monkeypatch):
    run = small_spec(tmp_path / "train/mnist5k/s/tff/seed0")
    with monkeypatch.context() as m:
        signal_on_call(m, FFTrainer, "train_step", 8 + 3, signal.SIGUSR1)  # epoch 2, step 3 of 8
        index = interrupted(run)
    assert [(e["epoch"], e["step"]) for e in index.values() if e["kind"] == "resume"] == [(1, 0), (1, 3)]
    [row] = status.collect(None, tmp_path / "train")  # `trifecta status` on the stopped run
    assert (row["state"], row["epochs_done"], row["epochs_total"]) == ("interrupted", 1, 3)
    train(run)
    assert_same_logs(run, reference_run)
    assert json.loads((run.out_dir / "run.json").read_text())["resumes"][-1]["checkpoint"] == \
        "resume_epoch_0001_step_0003.pt"


def test_a_signal_while_resuming_mid_epoch_keeps_that_checkpoint(reference_run, tmp_path, monkeypatch):
    """Preempted mid-epoch, then again while the retry starts: the mid-epoch checkpoint stays the newest, as it
    was, and no end-of-epoch checkpoint is overwritten with its weights."""
    run = small_spec(tmp_path / "run")
    with monkeypatch.context() as m:
        signal_on_call(m, FFTrainer, "train_step", 8 + 3, signal.SIGUSR1)  # epoch 2, step 3 of 8
        first = interrupted(run)
    with monkeypatch.context() as m:
        signal_on_call(m, data, "load_dataset", 1)  # the retry's start-up
        second = interrupted(run)
    resumes = {name: (e["epoch"], e["step"], e["sha256"]) for name, e in second.items() if e["kind"] == "resume"}
    assert resumes == {name: (e["epoch"], e["step"], e["sha256"]) for name, e in first.items() if e["kind"] == "resume"}
    train(run)
    assert_same_logs(run, reference_run)
    assert json.loads((run.out_dir / "run.json").read_text())["resumes"][-1]["checkpoint"] == \
        "resume_epoch_0001_step_0003.pt"


def test_sigterm_during_evaluation_stops_at_the_end_of_the_epoch(reference_run, tmp_path, monkeypatch):
    run = small_spec(tmp_path / "run")
    with monkeypatch.context() as m:
        signal_on_call(m, loop, "evaluate", 1)  # the evaluation of epoch 1
        index = interrupted(run)
    assert max((e["epoch"], e["step"]) for e in index.values() if e["kind"] == "resume") == (1, 0)
    assert {r["epoch"] for r in read_rows(run.out_dir / "eval.csv")} == {"1"}  # the evaluation was finished
    train(run)
    assert_same_logs(run, reference_run)


def test_sigterm_during_start_up_stops_before_training(reference_run, tmp_path, monkeypatch):
    run = small_spec(tmp_path / "run")
    with monkeypatch.context() as m:
        signal_on_call(m, data, "load_dataset", 1)
        interrupted(run)
    assert not (run.out_dir / "steps.csv").exists()
    train(run)
    assert_same_logs(run, reference_run)


def test_sigterm_to_the_command_exits_143_and_the_rerun_matches(tmp_path, monkeypatch):
    """A real signal to a real `trifecta train` process: exit status 143, then the same run resumes and ends as an
    uninterrupted one (both of those in this process, with the command's one thread: bitwise the same)."""
    settings = [*SMALL, "subset_train=2048", "epochs=2", "eval_epochs=2"]
    command = [sys.executable, "-m", "trifecta.cli", "train", "--dataset", "mnist5k", "--arch", "s", "--algo", "tff",
               "--seed", "0", "--device", "cpu", "--deterministic", "--threads", "1", "--data-dir", str(tmp_path),
               *[f"--set={s}" for s in settings]]
    cut = tmp_path / "cut"
    job = subprocess.Popen([*command, "--out", str(cut)], stderr=subprocess.PIPE, text=True)
    while job.poll() is None and "1" not in epochs_done(cut):  # epoch 1 is done
        time.sleep(0.05)
    time.sleep(0.3)  # into epoch 2 (32 steps)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == 143, job.stderr.read()
    assert "run the same command to resume" in job.stderr.read()
    assert json.loads((cut / "run.json").read_text())["status"] == "interrupted"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full, resumed = small_spec(tmp_path / "full", overrides=settings), small_spec(cut, overrides=settings)
        train(full), train(resumed)
    finally:
        torch.set_num_threads(threads)
    assert_same_logs(resumed, full)


# ---- Errors and learning ----

def test_cli_errors_name_the_problem(tmp_path, capsys):
    base = ["train", "--dataset", "mnist5k", "--arch", "s", "--seed", "0", "--out", str(tmp_path / "x")]
    assert cli([*base, "--algo", "tfff"]) == 1
    assert "unknown algorithm 'tfff'" in capsys.readouterr().err
    assert cli([*base, "--algo", "tff", "--set", "lr=3"]) == 1
    assert "unknown setting 'lr'" in capsys.readouterr().err
    assert cli([*base, "--algo", "tff", "--dataset", "imagenet"]) == 1
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
    assert cli([*base[:4], "x", *base[5:], "--algo", "tff"]) == 1
    assert "unknown architecture 'x'" in capsys.readouterr().err
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_a_failed_run_says_so_in_run_json(tmp_path, monkeypatch):
    run = small_spec(tmp_path / "run")

    def broken_step(*args, **kwargs):
        raise FloatingPointError("the loss is NaN")
    monkeypatch.setattr(FFTrainer, "train_step", broken_step)
    with pytest.raises(FloatingPointError):
        train(run)
    record = json.loads((run.out_dir / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "FloatingPointError: the loss is NaN"


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_tff_learns_the_embedded_digits(tmp_path, precision):
    """4000 real training digits, 1/8 of the paper's shallow CNN, 3 epochs; bf16 is the GPU recipe (bfloat16
    autocast, channels-last, fused Adam) run on the CPU."""
    cfg = build_settings(overrides=["width=0.125", "batch_size=64", "epochs=3", "eval_epochs=1,3",
                                  f"precision={precision}"])
    spec = RunSpec("mnist5k", "s", "tff", 0, tmp_path / "tff", tmp_path / "data", cfg, device="cpu")
    evals = train(spec)["evals"]
    assert evals["3"]["acc_last"] > 0.5  # chance is 0.1
    assert evals["3"]["acc_last"] > evals["1"]["acc_last"]
    assert json.loads((spec.out_dir / "run.json").read_text())["numerics"]["channels_last"] == (precision == "bf16")


# ---- Provenance ----

@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A git clone of this checkout, whose files a test may change."""
    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout")
    dest = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True)
    shutil.copytree(repo / "src", dest / "src", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(dest), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "the working tree's package"], check=True)
    return dest


def git_state_of(clone):
    """git_state() of the clone's own package (codehash.py, loaded by path: it needs no torch)."""
    spec = importlib.util.spec_from_file_location("clone_codehash", clone / "src/trifecta/identity/codehash.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.git_state()


def test_the_dirty_flag_covers_what_changes_results_not_site_settings(clone):
    assert git_state_of(clone)["dirty"] is False
    profile = clone / "slurm/config.yaml"
    profile.write_text(profile.read_text().replace('slurm_partition: ""', 'slurm_partition: "gpu"'))
    (clone / "README.md").write_text("edited\n")
    assert git_state_of(clone)["dirty"] is False  # the README's set-up step leaves runs clean
    with open(clone / "src/trifecta/training/algorithms/ff.py", "a") as f:
        f.write("\n# a comment\n")
    (clone / "src/trifecta/extra.py").write_text("x = 1\n")  # untracked, but importable
    state = git_state_of(clone)
    assert state["dirty"] is True
    assert state["dirty_files"] == ["src/trifecta/extra.py", "src/trifecta/training/algorithms/ff.py"]


def test_the_run_directory_gets_metrics_json_last(reference_run, tmp_path, monkeypatch):
    """A crash while a finished run is shown leaves no metrics.json beside other logs than its own."""
    from trifecta.operations import train as train_cli
    copied = []
    monkeypatch.setattr(train_cli, "copy_file", lambda source, dest: copied.append(dest.name))
    view = train_cli.RunView(tmp_path / "view")
    view.bind(store_of(reference_run))
    view.show(train_cli.FILES)
    assert copied[-1] == "metrics.json" and sorted(copied) == sorted(train_cli.FILES)


def test_the_identity_holds_the_recipe_resolved_on_the_device(tmp_path, monkeypatch):
    """precision=auto on a CUDA device is the same run as an explicit bf16 there, and another run than auto on a
    CPU: a store filled on a CPU is never shown to a GPU job. The CUDA device is resolved, not used (no GPU here)."""
    from trifecta.operations import train as train_module

    def identity(precision, device):
        monkeypatch.setattr(train_module, "resolve_device", lambda name: torch.device(device))
        spec = small_spec(tmp_path / f"{precision}-{device}", overrides=[*SMALL, f"precision={precision}"])
        return spec.identity_hash, spec.identity["recipe"]

    auto_gpu, bf16_gpu, auto_cpu = identity("auto", "cuda"), identity("bf16", "cuda"), identity("auto", "cpu")
    assert auto_gpu == bf16_gpu and auto_gpu[1] == {"device": "cuda", "precision": "bf16"}
    assert auto_cpu[1] == {"device": "cpu", "precision": "fp32"} and auto_cpu[0] != auto_gpu[0]
    assert identity("bf16", "cpu")[0] not in (auto_gpu[0], auto_cpu[0])  # bf16 on a CPU is a run of its own
