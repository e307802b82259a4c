"""`trifecta status`: run directories written by hand in every state, read back as a table, JSON and a summary."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from trifecta.operations import status
from trifecta.identity.runcode import run_code
from trifecta.training.settings import resolve_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config.yaml"

# Over config.yaml: `runs` replaced wholesale, `resources` merged key by key (the schema needs the rest of it).
OVERLAY = """
resources: {gpu: 0}
runs:
  - name: tff_small
    datasets: [mnist5k]
    archs: [s]
    algos: [tff]
    seeds: [0, 1, 2, 3, 4, 5, 6]
    settings: {epochs: 100}
  - name: bp_small
    datasets: [mnist5k]
    archs: [d]
    algos: [bp]
    seeds: [0, 1]
    settings: {epochs: 4}
"""


def write_run(train_dir, run_id, state, times, *, eval_rows=(), slurm=None, device="cuda", metrics=False,
              age_s=0.0, error=None, epochs=100, gpus=None):
    """A run directory as operations/train.py leaves it: run.json (aged by age_s), eval.csv and maybe metrics.json."""
    out = train_dir / run_id
    out.mkdir(parents=True)
    record = {"status": state, "settings": {"epochs": epochs},
              "epoch_wall_s": {str(i + 1): t for i, t in enumerate(times)}, "slurm_job_id": slurm, "host": "node1",
              "started": "2026-01-01T00:00:00+00:00", "resumes": [],
              "device": {"type": device, "name": "H100" if device == "cuda" else "x86_64"}}
    if error:
        record.update(error=error, finished="2026-01-01T01:00:00+00:00")
    if gpus:  # the devices it took on a workstation (operations/gpus.py)
        record["gpu_slots"] = {"devices": gpus, "slots": [0] * len(gpus), "slots_per_gpu": 1, "pool": "/tmp/p"}
    (out / "run.json").write_text(json.dumps(record))
    stamp = time.time() - age_s
    os.utime(out / "run.json", (stamp, stamp))
    if eval_rows:
        lines = ["epoch,layer,accuracy,max_goodness,max_abs_weight"] + [f"{e},{l},{a},1.5,0.3" for e, l, a in eval_rows]
        (out / "eval.csv").write_text("\n".join(lines) + "\n")
    if metrics:
        (out / "metrics.json").write_text("{}")


@pytest.fixture
def grid_dirs(tmp_path):
    """The overlay's grid (7 TFF/s runs of 100 epochs, 2 BP/d runs of 4) with run directories in every state."""
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text(OVERLAY)
    train = tmp_path / "train"
    # seed0 and both BP/d runs: pending (no directory)
    write_run(train, "mnist5k/s/tff/seed1", "running", [300, 420], slurm="4242", gpus=["2"],
              eval_rows=[(1, 1, 0.3), (1, 2, 0.4), (1, 3, 0.5)])
    write_run(train, "mnist5k/s/tff/seed2", "interrupted", [240] * 3, slurm="777",
              eval_rows=[(1, 1, 0.2), (1, 2, 0.3), (1, 3, 0.35), (3, 1, 0.5), (3, 2, 0.7), (3, 3, 0.6)])
    write_run(train, "mnist5k/s/tff/seed3", "failed", [600], error="RuntimeError: boom", slurm="901")
    write_run(train, "mnist5k/s/tff/seed4", "complete", [180] * 100, metrics=True, slurm="555",
              eval_rows=[(50, 3, 0.7), (100, 1, 0.6), (100, 2, 0.7), (100, 3, 0.8125)])
    write_run(train, "mnist5k/s/tff/seed5", "running", [100, 100], age_s=3600, slurm="999")  # 1 h old: stalled
    write_run(train, "mnist5k/s/tff/seed6", "running", [400], age_s=1200)  # 20 min < 5 x 400 s: not stalled
    write_run(train, "mnist5k/f/fa/seed0", "complete", [720] * 5, metrics=True, device="cpu", epochs=5,
              eval_rows=[(5, 6, 0.9)])  # not in the grid
    write_run(train, "mnist5k/s/tff/seed9", "interrupted", [50, 50])  # not in the grid either: not left to do
    return ["--config", str(CONFIG), "--configfile", str(overlay), "--train-dir", str(train)]


def run_json(capsys, args) -> dict:
    assert status.main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_state_in_the_rows(grid_dirs, capsys):
    report = run_json(capsys, grid_dirs)
    rows = {r["run"]: r for r in report["rows"]}
    assert list(rows)[:9] == [f"mnist5k/s/tff/seed{i}" for i in range(7)] + [f"mnist5k/d/bp/seed{i}" for i in (0, 1)]
    fields = ("state", "epochs_done", "epochs_total", "accuracy", "s_per_epoch", "eta_s", "slurm_job_id", "stalled")
    expected = {
        "mnist5k/s/tff/seed0": ("pending", 0, 100, None, None, None, None, False),
        "mnist5k/s/tff/seed1": ("running", 2, 100, 50.0, 360.0, 98 * 360.0, "4242", False),
        "mnist5k/s/tff/seed2": ("interrupted", 3, 100, 60.0, 240.0, 97 * 240.0, "777", False),  # last layer, epoch 3
        "mnist5k/s/tff/seed3": ("failed", 1, 100, None, 600.0, 99 * 600.0, "901", False),
        "mnist5k/s/tff/seed4": ("complete", 100, 100, 81.25, 180.0, 0.0, "555", False),
        "mnist5k/s/tff/seed5": ("running", 2, 100, None, 100.0, 98 * 100.0, "999", True),
        "mnist5k/s/tff/seed6": ("running", 1, 100, None, 400.0, 99 * 400.0, None, False),
        "mnist5k/d/bp/seed0": ("pending", 0, 4, None, None, None, None, False),
        "mnist5k/f/fa/seed0": ("complete", 5, 5, 90.0, 720.0, 0.0, None, False),  # total from its run.json
        "mnist5k/s/tff/seed9": ("interrupted", 2, 100, None, 50.0, 98 * 50.0, None, False),
    }
    for run, values in expected.items():
        got = tuple(rows[run][k] for k in fields)
        assert got == pytest.approx(values), run
    assert rows["mnist5k/s/tff/seed3"]["note"] == "RuntimeError: boom"
    assert rows["mnist5k/s/tff/seed5"]["note"].startswith("stalled?")
    outside = ["mnist5k/f/fa/seed0", "mnist5k/s/tff/seed9"]
    assert list(rows)[9:] == outside and len(rows) == 11
    assert all(rows[r]["in_grid"] is False and rows[r]["note"] == "(not in the grid)" for r in outside)
    assert all(rows[r]["in_grid"] for r in rows if r not in outside)


def test_summary_counts_and_hours(grid_dirs, capsys):
    summary = run_json(capsys, grid_dirs)["summary"]
    assert summary["states"] == {"pending": 3, "running": 3, "interrupted": 2, "failed": 1, "complete": 2,
                                 "outdated": 0}
    assert (summary["runs"], summary["stalled"]) == (11, 1)
    spent = 720 + 720 + 600 + 18000 + 200 + 400 + 100 + 3600  # every measured epoch; the CPU run is the last term
    assert summary["device_hours_spent"] == pytest.approx(spent / 3600)
    assert summary["gpu_hours_spent"] == pytest.approx((spent - 3600) / 3600)
    # Remaining epochs x own mean; seed0 (none measured) x the complete TFF/s run's 180 s; the BP/d runs have no
    # complete run of their dataset and arch, and the runs outside the grid are not left to do.
    left = 98 * 360 + 97 * 240 + 99 * 600 + 98 * 100 + 99 * 400 + 100 * 180
    assert summary["device_hours_left"] == pytest.approx(left / 3600)
    assert summary["runs_without_estimate"] == 2


def test_table(grid_dirs, capsys):
    assert status.main(grid_dirs) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("mnist5k/")}
    assert out.splitlines()[0].split() == ["RUN", "STATE", "EPOCHS", "ACC", "%", "S/EPOCH", "ETA", "DEVICE", "SLURM",
                                         "NOTE"]
    assert lines["mnist5k/s/tff/seed0"].split() == ["mnist5k/s/tff/seed0", "pending", "0/100", "—", "—", "—", "—",
                                                    "—"]
    assert lines["mnist5k/s/tff/seed1"].split() == ["mnist5k/s/tff/seed1", "running", "2/100", "50.00", "360.0",
                                                    "9h48m", "GPU", "2", "4242"]
    assert lines["mnist5k/s/tff/seed2"].split()[1:8] == ["interrupted", "3/100", "60.00", "240.0", "6h28m", "cuda",
                                                         "777"]
    assert lines["mnist5k/s/tff/seed3"].split()[1:] == ["failed", "1/100", "—", "600.0", "16h30m", "cuda", "901",
                                                        "RuntimeError:", "boom"]
    assert lines["mnist5k/s/tff/seed4"].split() == ["mnist5k/s/tff/seed4", "complete", "100/100", "81.25", "180.0",
                                                    "done", "cuda", "555"]
    assert lines["mnist5k/s/tff/seed5"].split()[1:9] == ["running", "2/100", "—", "100.0", "2h43m", "cuda", "999",
                                                         "stalled?"]
    assert "stalled" not in lines["mnist5k/s/tff/seed6"]
    assert lines["mnist5k/f/fa/seed0"].split()[1:] == ["complete", "5/5", "90.00", "720.0", "done", "cpu", "—",
                                                       "(not", "in", "the", "grid)"]
    header = out.splitlines()[0]
    for line in lines.values():  # fixed-width columns under the header
        run, state, epochs, *_ = line.split()
        assert line.index(state, len(run)) == header.index("STATE")
        assert line.index(epochs, header.index("STATE")) + len(epochs) == header.index("EPOCHS") + len("EPOCHS")
    assert "11 runs: 3 pending, 3 running, 2 interrupted, 1 failed, 2 complete (1 of them stalled?)" in out
    # 24340 s spent (20740 s on a GPU), 185360 s left
    assert "device-hours spent: 6.8 (GPU 5.8); left: 51.5 at measured epoch times, 2 unfinished runs without" in out


def _minimal(tmp_path) -> Path:
    """config.yaml with one 4-epoch run, mnist5k/s/tff/seed0."""
    config = yaml.safe_load(CONFIG.read_text())
    config["runs"] = [{"name": "one", "datasets": ["mnist5k"], "archs": ["s"], "algos": ["tff"], "seeds": [0],
                       "settings": {"epochs": 4}}]
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_complete_needs_metrics_json(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path, "mnist5k/s/tff/seed0", "complete", [5.0] * 4, epochs=4)
    (row,) = run_json(capsys, ["--config", str(_minimal(tmp_path)), "--train-dir", str(tmp_path)])["rows"]
    assert (row["state"], row["epochs_done"], row["epochs_total"]) == ("running", 4, 4)  # metrics.json comes last
    (tmp_path / "mnist5k/s/tff/seed0/metrics.json").write_text("{}")
    (row,) = run_json(capsys, ["--config", str(_minimal(tmp_path)), "--train-dir", str(tmp_path)])["rows"]
    assert row["state"] == "complete"


def test_without_a_config_every_run_directory(grid_dirs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./config.yaml here
    rows = run_json(capsys, ["--train-dir", str(tmp_path / "train")])["rows"]
    expected = [f"mnist5k/s/tff/seed{i}" for i in (1, 2, 3, 4, 5, 6, 9)] + ["mnist5k/f/fa/seed0"]
    assert [r["run"] for r in rows] == sorted(expected)
    assert all(r["in_grid"] is None and "not in the grid" not in r["note"] for r in rows)
    assert {r["run"]: r["epochs_total"] for r in rows}["mnist5k/f/fa/seed0"] == 5


def test_embedded_overlay_replaces_the_runs(tmp_path, capsys):
    rows = run_json(capsys, ["--config", str(CONFIG), "--configfile", str(ROOT / "workflow" / "embedded.yaml"),
                             "--train-dir", str(tmp_path)])["rows"]
    assert len(rows) == 16 and {r["run"].split("/")[0] for r in rows} == {"mnist5k"}
    assert {r["epochs_total"] for r in rows} == {4} and {r["state"] for r in rows} == {"pending"}


@pytest.mark.parametrize("runs, message", [
    ("[{name: x, datasets: [mnist5k], archs: [f], algos: [bp], seeds: [0], settings: {epochs: 4}}]",
     "algorithm 'bp' supports architectures d, s, not 'f'"),
    ("[{name: x, datasets: [mnist5k], archs: [s], algos: [tff], seeds: [0], settings: {epochs: 0}}]",
     "(runs[0]), run mnist5k/s/tff: settings.epochs = 0: must be >= 1"),
    ("[{name: x, datasets: [mnist5k], archs: [s], algos: [tff], seeds: [0], settings: {epochs: 4}}, "
     "{name: x, datasets: [mnist5k], archs: [s], algos: [vff], seeds: [0], settings: {epochs: 4}}]",
     "two grid entries in `runs` are named 'x'"),
])
def test_bad_config_exit_2(tmp_path, capsys, runs, message):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text(f"runs: {runs}\n")
    assert status.main(["--config", str(CONFIG), "--configfile", str(overlay), "--train-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""


def test_missing_or_broken_config_exit_2(tmp_path, capsys):
    assert status.main(["--config", str(tmp_path / "nope.yaml"), "--train-dir", str(tmp_path)]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    (tmp_path / "broken.yaml").write_text("runs: [\n")
    assert status.main(["--config", str(tmp_path / "broken.yaml"), "--train-dir", str(tmp_path)]) == 2
    assert "broken.yaml" in capsys.readouterr().err


def test_paper_grid_fast(tmp_path, capsys):
    start = time.perf_counter()
    code = status.main(["--config", str(CONFIG), "--train-dir", str(tmp_path / "empty")])
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    print(f"paper grid: {elapsed:.3f} s")
    rows = [line for line in out.splitlines() if line.split() and line.split()[0].count("/") == 3]
    assert code == 0 and len(rows) == 117 and all(line.split()[1] == "pending" for line in rows)
    assert "117 runs: 117 pending, 0 running" in out
    assert elapsed < 5.0


def test_watch_redraws_until_ctrl_c(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt
    monkeypatch.setattr(status.time, "sleep", sleep)
    assert status.main(["--configfile", str(_minimal(tmp_path)), "--train-dir", str(tmp_path), "--watch", "7"]) == 0
    out = capsys.readouterr().out
    assert sleeps == [7, 7] and out.count("\x1b[H\x1b[2J") == 2 and out.count("mnist5k/s/tff/seed0") == 2


def test_import_is_torch_free():
    code = "import sys, trifecta.operations.status; assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)


def test_a_run_with_other_settings_or_code_than_now_is_outdated(grid_dirs, capsys):
    """The config asks for 100 epochs; a complete run recorded with 50, or with other training code, will be
    trained again from epoch 0: neither is complete, and its hours count in what is left."""
    train = Path(grid_dirs[grid_dirs.index("--train-dir") + 1])
    record_path = train / "mnist5k/s/tff/seed4/run.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "settings": {"epochs": 50}}))
    row = {r["run"]: r for r in run_json(capsys, grid_dirs)["rows"]}["mnist5k/s/tff/seed4"]
    assert (row["state"], row["eta_s"]) == ("outdated", 100 * 180.0)
    assert row["note"] == "settings (epochs) changed since it ran: the workflow trains it again"
    record_path.write_text(json.dumps({**record, "training_code": "0" * 64}))
    report = run_json(capsys, grid_dirs)
    row = {r["run"]: r for r in report["rows"]}["mnist5k/s/tff/seed4"]
    assert (row["state"], row["note"]) == ("outdated", "its training code changed since it ran: the workflow trains "
                                                       "it again")
    assert report["summary"]["states"]["outdated"] == 1
    record_path.write_text(json.dumps({**record, "training_code": run_code("mnist5k", "s", "tff").sha256}))
    assert {r["run"]: r for r in run_json(capsys, grid_dirs)["rows"]}["mnist5k/s/tff/seed4"]["state"] == "complete"


def test_a_finished_run_whose_epochs_grew_is_continued(grid_dirs, capsys):
    """The config asks for 100 epochs; a complete run of the same settings with 50 goes on from its end: only the
    50 epochs beyond count as left."""
    from trifecta.training.settings import resolve_settings

    train = Path(grid_dirs[grid_dirs.index("--train-dir") + 1])
    record_path = train / "mnist5k/s/tff/seed4/run.json"
    record = json.loads(record_path.read_text())
    config = json.loads(json.dumps(resolve_settings({"epochs": 50}, "tff", "mnist5k").identity_dict()))
    record_path.write_text(json.dumps({**record, "settings": config, "epoch_wall_s": {str(e): 180 for e in range(1, 51)}}))
    row = {r["run"]: r for r in run_json(capsys, grid_dirs)["rows"]}["mnist5k/s/tff/seed4"]
    assert (row["state"], row["epochs_left"], row["eta_s"]) == ("outdated", 50, 50 * 180.0)
    assert row["note"] == ("settings (epochs, eval_epochs, snapshot_epochs) changed since it ran: the workflow "
                           "continues it after epoch 50")
    config["width"] = 0.5  # and another setting: trained again from epoch 1
    record_path.write_text(json.dumps({**record, "settings": config, "epoch_wall_s": {str(e): 180 for e in range(1, 51)}}))
    row = {r["run"]: r for r in run_json(capsys, grid_dirs)["rows"]}["mnist5k/s/tff/seed4"]
    assert (row["epochs_left"], row["note"].endswith("trains it again")) == (100, True)


def test_summary_gives_the_grids_time_requests_and_measured_hours(grid_dirs, tmp_path, capsys):
    """Requested: the first attempts' time requests of the unfinished grid runs as the planner makes them (here CPU
    jobs, gpu: 0); measured: the complete grid runs' epoch times (seed4: 100 x 180 s on a GPU)."""
    store = tmp_path / "store"
    overlay = Path(grid_dirs[grid_dirs.index("--configfile") + 1])
    overlay.write_text(OVERLAY + f"store_dir: {store}\n")
    summary = run_json(capsys, grid_dirs)["summary"]
    # 8 unfinished runs (TFF/s seeds 0-3, 5, 6; BP/d seeds 0, 1) at the config's estimates: 10 min start-up +
    # 100 x 0.05 min x 0.1 (mnist5k's 4000 images) = 10.5, or 4 x 0.1 x 0.1; each rounded up to 11 minutes.
    assert summary["hours_requested"] == pytest.approx(8 * 11 / 60)
    assert (summary["job_device"], summary["gpu_hours_requested"]) == ("cpu", 0)
    assert summary["requests"] == {"measured": 0, "other_algo": 0, "estimate": 8}
    assert (summary["hours_measured"], summary["gpu_hours_measured"]) == (pytest.approx(5.0), pytest.approx(5.0))
    folder = store / "finished_tff"  # a finished TFF/s run on the CPU at 60 s per epoch: 10 + 100 x 1 x margin
    folder.mkdir(parents=True)
    record = {"dataset": "mnist5k", "arch": "s", "algo": "tff", "seed": 9, "status": "complete",
              "settings": json.loads(json.dumps(resolve_settings({"epochs": 100}, "tff", "mnist5k").identity_dict())),
              "recipe": {"device": "cpu", "precision": "fp32"}, "epoch_wall_s": {"1": 60.0, "2": 60.0}}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "metrics.json").write_text("{}")
    summary = run_json(capsys, grid_dirs)["summary"]
    margin = yaml.safe_load(CONFIG.read_text())["resources"]["runtime_margin"]
    assert summary["hours_requested"] == pytest.approx((6 * math.ceil(10 + 100 * margin) + 2 * 11) / 60)
    assert summary["requests"] == {"measured": 6, "other_algo": 0, "estimate": 2}
    assert status.main(grid_dirs) == 0
    out = capsys.readouterr().out
    assert (f"requested: {summary['hours_requested']:.1f} hours on the CPU for 8 unfinished runs (first attempts: "
            "6 from measured epoch times, 0 from another algorithm's, 2 from the config's estimates); the complete "
            "runs measured 5.0 hours of epochs (5.0 GPU-hours)") in out
