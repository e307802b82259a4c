"""The workflow on a real SLURM cluster (see conftest.py): what goes through sbatch, equal results, GPU requests,
preemption, a failed job, SIGTERM ahead of the time limit with a retry that gets twice the time, and a restart of a
killed Snakemake while its jobs still run.

Every run uses the repository's cluster profile (`--profile slurm`, copied with the workflow) and, except the
GPU check, the CI overlay profile/config.yaml on top (`--workflow-profile`, which replaces keys one by one).
On CPU with one torch thread `trifecta train` is bitwise repeatable, so results are compared exactly.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

from tests.fakedata import write_fake_dataset
from tests.workflow.smk import copy_workflow, snakemake

OVERLAY = Path(__file__).parent / "profile"
RUN_DIR = "results/train/{}/s/{}/seed{}"
FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY")
TINY = {"epochs": 2, "eval_epochs": [1, 2], "width": 0.0625, "batch_size": 100, "subset_train": 1000,
        "subset_test": 500}


# ---- Workflow copies and snakemake runs ----

def grid(*entries, gpu=0, preflight=False) -> dict:
    """A config overlay: CPU-sized resources (one torch thread: bitwise repeatable) and the given grid. The
    preflight job (`trifecta selftest` on a node like the training jobs', about 30 s more per run) is off unless
    a test is about what goes to SLURM."""
    return {"resources": {"gpu": gpu, "threads": 1, "mem_mb": 1000}, "runs": list(entries),
            "preflight": {"activate": preflight}}


def entry(name, algos, seeds, settings, dataset="mnist5k") -> dict:
    return {"name": name, "datasets": [dataset], "archs": ["s"], "algos": algos, "seeds": seeds,
            "settings": settings}


def workflow(dest: Path, config: dict) -> Path:
    workdir = copy_workflow(dest)
    (workdir / "test.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return workdir


def start(workdir: Path, *args: str) -> subprocess.Popen:
    """snakemake ARGS in the background, output to workdir/snakemake.out; the venv's bin first on PATH."""
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    log = workdir / "snakemake.out"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env, stdout=out,
                                stderr=subprocess.STDOUT, text=True)
    proc.log = log
    return proc


def finish(proc: subprocess.Popen, timeout: float) -> str:
    """Wait for snakemake; past the timeout stop it and fail."""
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise AssertionError(f"snakemake did not finish in {timeout} s:\n{output_of(proc)[-4000:]}") from None
    return output_of(proc)


def stop(proc: subprocess.Popen, grace: float = 60) -> None:
    """SIGINT, which makes snakemake cancel its SLURM jobs and exit (SIGTERM would wait for them)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def output_of(proc: subprocess.Popen) -> str:
    return proc.log.read_text()


def on_slurm(*targets: str, profile: Path | None = OVERLAY) -> list[str]:
    """Arguments of a cluster run: the repository's profile, the CI overlay, the test config."""
    overlay = ["--workflow-profile", str(profile)] if profile else []
    return [*targets, "--profile", "slurm", *overlay, "--configfile", "test.yaml"]


def run_on_slurm(workdir: Path, *args: str, timeout: float = 300) -> tuple[int, str, str]:
    """(exit status, output, SLURM run ID: the job name of every job this run submitted)."""
    proc = start(workdir, *args)
    output = finish(proc, timeout)
    run_id = re.search(r"SLURM run ID: (\S+)", output)
    assert run_id, output[-4000:]
    return proc.returncode, output, run_id.group(1)


# ---- SLURM queries ----

def sacct(*args: str) -> list[dict]:
    """Job records (allocations only), oldest first; -D adds those of earlier runs of requeued jobs."""
    fields = ["JobID", "JobName", "Comment", "State", "Elapsed", "Timelimit", "AllocTRES"]
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", "now-6hours", "-o", ",".join(fields), *args],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines()]


def final_jobs(*args: str, timeout: float = 20) -> list[dict]:
    """sacct records once every one is in a final state (sacct lags behind the controller by a second or two)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = sacct(*args)
        if jobs and all(job["State"].startswith(FINAL_STATES) for job in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.5)


def train_comment(dataset, algo, seed) -> str:
    """The comment the executor plugin gives a training job's SLURM job."""
    return f"rule_train_model_wildcards_{dataset}_s_{algo}_{seed}"


def wait_for(probe, timeout: float, what: str, proc: subprocess.Popen):
    """probe()'s first true value, polled while snakemake (proc) runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"no {what} after {timeout} s (snakemake exit status {proc.poll()}):\n"
                         f"{output_of(proc)[-4000:]}")


def read_json(path: Path) -> dict:
    """For assertions: a missing or unreadable file fails the test."""
    return json.loads(path.read_text())


def poll_json(path: Path) -> dict | None:
    """For wait_for: None while the file is not (completely) written yet."""
    try:
        return read_json(path)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ---- Comparing runs ----

def csv_rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def assert_same_results(run_dir: Path, reference: Path, logs=("eval.csv", "ensemble.csv")) -> None:
    assert read_json(run_dir / "metrics.json") == read_json(reference / "metrics.json"), run_dir
    for name in logs:
        assert csv_rows(run_dir / name) == csv_rows(reference / name), run_dir / name


# ---- Tests ----

def test_training_jobs_go_through_slurm_and_equal_a_local_run(tmp_path):
    """A small variant of the embedded default (2 algos x 2 seeds) through `--profile slurm` + the CI overlay."""
    config = grid(entry("small", ["tff", "vff"], [0, 1], TINY), preflight=True)
    runs = [("mnist5k", algo, seed) for algo in ("tff", "vff") for seed in (0, 1)]
    workdir = workflow(tmp_path / "slurm", config)
    code, output, run_id = run_on_slurm(workdir, *on_slurm())
    assert code == 0, output[-4000:]

    jobs = final_jobs("--name", run_id)
    expected = ["rule_preflight", *(train_comment(*run) for run in runs)]
    assert sorted(job["Comment"] for job in jobs) == sorted(expected), jobs
    assert {job["State"] for job in jobs} == {"COMPLETED"}, jobs
    job_of = {job["Comment"]: job["JobID"] for job in jobs}
    preflight = int(job_of.pop("rule_preflight"))
    assert all(int(job_id) > preflight for job_id in job_of.values()), jobs  # submitted once it had passed
    for run in runs:  # each run's provenance names the SLURM job it trained in
        assert read_json(workdir / RUN_DIR.format(*run) / "run.json")["slurm_job_id"] == job_of[train_comment(*run)]
    # Downloads, aggregation and tables ran on the submitting machine: no SLURM job of theirs exists.
    for rule in ("download_data", "collect_runs", "make_table", "make_scorecard"):
        assert f"localrule {rule}:" in output, rule

    local = workflow(tmp_path / "local", {**config, "preflight": {"activate": False}})
    snakemake(local, "--cores", "2", "--configfile", "test.yaml")
    for run in runs:
        assert_same_results(workdir / RUN_DIR.format(*run), local / RUN_DIR.format(*run))
    assert csv_rows(workdir / "results/tables/runs.csv") == csv_rows(local / "results/tables/runs.csv")


def test_training_job_asks_for_a_gpu(tmp_path):
    """The sbatch call of a training job (the shipped profile alone, config gpu=1) carries --gpus=1. No
    preflight: it would rightly refuse these fake GPUs, which torch cannot use."""
    settings = {"epochs": 1, "width": 0.0625, "batch_size": 100, "subset_train": 200, "subset_test": 100}
    workdir = workflow(tmp_path / "wf", grid(entry("gpu_check", ["tff"], [0], settings), gpu=1))
    target = RUN_DIR.format("mnist5k", "tff", 0) + "/metrics.json"
    code, output, run_id = run_on_slurm(workdir, *on_slurm(target, profile=None), "--verbose")
    assert code == 0, output[-4000:]

    calls = re.findall(r"^sbatch call: (sbatch .*)$", output, re.M)
    assert len(calls) == 1, calls
    call = calls[0]
    assert f"--comment {train_comment('mnist5k', 'tff', 0)}" in call
    for option in ("--gpus=1", "--cpus-per-task=1", "--mem 1000", "--requeue", "--signal=TERM@120"):
        assert option in call.split(" --wrap=")[0], (option, call)
    [job] = final_jobs("--name", run_id)
    assert job["State"] == "COMPLETED" and "gres/gpu=1" in job["AllocTRES"], job


def test_a_failed_preflight_submits_no_training_job(tmp_path):
    """gpu=1 on this cluster's fake GPUs: the preflight job, which asks for --gpus=1 as the training jobs do,
    finds a GPU that torch cannot use and fails; Snakemake prints its log, and no training job reaches SLURM."""
    workdir = workflow(tmp_path / "wf", grid(entry("gpu", ["tff", "vff"], [0], TINY), gpu=1, preflight=True))
    code, output, run_id = run_on_slurm(workdir, *on_slurm(), "--verbose")
    assert code != 0, output[-4000:]
    calls = re.findall(r"^sbatch call: (sbatch .*)$", output, re.M)
    assert len(calls) == 1 and "--comment rule_preflight" in calls[0], calls
    assert "--gpus=1" in calls[0].split(" --wrap=")[0], calls[0]
    [job] = final_jobs("--name", run_id)
    assert (job["Comment"], job["State"]) == ("rule_preflight", "FAILED") and "gres/gpu=1" in job["AllocTRES"], job
    assert "this job was given GPU(s) (CUDA_VISIBLE_DEVICES=" in output  # the preflight's log, shown
    assert not (workdir / "results/train").exists()


def test_preempted_training_job_resumes_with_the_same_metrics(tmp_path, slurm_cluster, capsys):
    """A job in the higher-tier `urgent` partition preempts the training job; SLURM requeues it and it resumes."""
    settings = {"epochs": 6, "eval_epochs": [3, 6], "width": 0.0625, "batch_size": 100}
    config = grid(entry("long", ["tff"], [0], settings))
    workdir = workflow(tmp_path / "slurm", config)
    run_dir = workdir / RUN_DIR.format("mnist5k", "tff", 0)
    proc = start(workdir, *on_slurm(RUN_DIR.format("mnist5k", "tff", 0) + "/metrics.json"))
    urgent = None
    try:
        started = wait_for(lambda: (r := poll_json(run_dir / "run.json")) and r["epoch_wall_s"] and r, 180,
                           "finished epoch", proc)
        job_id = started["slurm_job_id"]
        urgent = subprocess.run(["sbatch", "--parsable", "-p", "urgent", "-c", str(slurm_cluster["cpus"]),
                                 "--mem", "100", "-t", "1", "-J", "trifecta-test-urgent", "-o", "/dev/null",
                                 "--wrap", "sleep 1"],
                                capture_output=True, text=True, check=True).stdout.strip()
        stopped = wait_for(lambda: (r := poll_json(run_dir / "run.json")) and r["status"] == "interrupted" and r,
                           60, "checkpoint of the preempted job", proc)
        # The uninterrupted reference, trained locally while SLURM holds the requeued job (about 30 s).
        local = workflow(tmp_path / "local", config)
        snakemake(local, "--cores", "1", "--configfile", "test.yaml")
        output = finish(proc, 300)
    finally:
        stop(proc)
        if urgent:
            subprocess.run(["scancel", urgent])
    assert proc.returncode == 0, output[-4000:]

    history = [job["State"] for job in final_jobs("-D", "-j", job_id)]
    assert history == ["PREEMPTED", "COMPLETED"], history
    record = read_json(run_dir / "run.json")
    [resume] = record["resumes"]
    step = int(re.fullmatch(r"resume_epoch_\d+_step_(\d+)\.pt", resume["checkpoint"]).group(1))
    epochs_done = len(stopped["epoch_wall_s"])
    redone = epochs_done - resume["from_epoch"]
    with capsys.disabled():  # in the CI log, not only on failure
        print(f"\npreempted in epoch {epochs_done + 1} of {settings['epochs']} after {step} steps; requeued job "
              f"{resume['slurm_job_id']} resumed from {resume['checkpoint']}: {redone} epochs redone")
    assert resume["slurm_job_id"] == job_id and redone == 0 and step > 0
    assert record["status"] == "complete"
    assert_same_results(run_dir, local / RUN_DIR.format("mnist5k", "tff", 0),
                        logs=("eval.csv", "ensemble.csv", "steps.csv"))


def test_failed_job_is_reported_and_only_it_reruns(tmp_path):
    """A training job on a corrupt dataset fails; its log is named, the others finish, the rerun does the rest."""
    config = grid(entry("good", ["tff", "vff"], [0], TINY), entry("broken", ["tff"], [0], TINY, dataset="mnist"))
    workdir = workflow(tmp_path / "wf", config)
    data_dir = workdir / "resources/data"
    write_fake_dataset("mnist", data_dir, n_train=200, n_test=100)
    images = data_dir / "MNIST/raw/train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:5000])  # truncated, as by an interrupted download
    (data_dir / "mnist.ok").touch()  # the marker download_data leaves: the dataset counts as downloaded

    code, output, run_id = run_on_slurm(workdir, *on_slurm())
    assert code != 0
    jobs = {job["Comment"]: job for job in final_jobs("--name", run_id)}
    broken = jobs.pop(train_comment("mnist", "tff", 0))
    assert broken["State"] == "FAILED", broken
    assert {job["State"] for job in jobs.values()} == {"COMPLETED"} and len(jobs) == 2, jobs
    slurm_log = workdir / f".snakemake/slurm_logs/rule_train_model/mnist_s_tff_0/{broken['JobID']}.log"
    assert f"SLURM-job '{broken['JobID']}' failed" in output
    assert str(slurm_log) in output and "logs/train/mnist/s/tff/seed0.log" in output
    assert slurm_log.is_file()
    assert "missing or unreadable" in (workdir / "logs/train/mnist/s/tff/seed0.log").read_text()
    kept = {algo: workdir / RUN_DIR.format("mnist5k", algo, 0) / "metrics.json" for algo in ("tff", "vff")}
    mtimes = {algo: path.stat().st_mtime_ns for algo, path in kept.items()}

    write_fake_dataset("mnist", data_dir, n_train=200, n_test=100)  # the fix: download it again
    code, output, run_id = run_on_slurm(workdir, *on_slurm())
    assert code == 0, output[-4000:]
    [job] = final_jobs("--name", run_id)
    assert (job["Comment"], job["State"]) == (train_comment("mnist", "tff", 0), "COMPLETED")
    assert {algo: path.stat().st_mtime_ns for algo, path in kept.items()} == mtimes
    runs = {tuple(row[:4]) for row in csv_rows(workdir / "results/tables/runs.csv")[1:]}
    assert runs == {("mnist5k", "s", "tff", "0"), ("mnist5k", "s", "vff", "0"), ("mnist", "s", "tff", "0")}


def test_sigterm_before_the_time_limit_saves_a_checkpoint_and_the_retry_gets_twice_the_time(tmp_path, capsys):
    """A 1-minute job with --signal=TERM@10 (slurm_extra): the training saves a checkpoint (mid-epoch, or after an
    epoch or the start-up if the signal comes between steps) and exits; with `retries: 1` Snakemake resubmits it
    with twice the runtime (attempt 2 of get_train_runtime)."""
    settings = {"epochs": 100, "eval_epochs": [100], "width": 0.0625, "batch_size": 100}
    long = {**entry("long", ["tff"], [0], settings), "resources": {"minutes_per_epoch": 0.001}}
    config = grid(long)
    config["resources"]["startup_minutes"] = 0.9  # ceil((0.9 + 100 epochs x 0.001 x 0.1) x attempt): 1, then 2
    workdir = workflow(tmp_path / "wf", config)
    run_dir = workdir / RUN_DIR.format("mnist5k", "tff", 0)
    log = workdir / "logs/train/mnist5k/s/tff/seed0.log"
    profile = yaml.safe_load((OVERLAY / "config.yaml").read_text())
    # SLURM checks time limits every 30 s, so TERM@10 comes 20-50 s after the start: after the start-up
    # (about 6 s), long before the 100 epochs (about 200 s) end. No runtime here: it would replace the
    # attempt-dependent one.
    profile["retries"] = 1
    profile["set-resources"] = {"train_model": {"slurm_extra": "--signal=TERM@10"}}
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile/config.yaml").write_text(yaml.safe_dump(profile))
    proc = start(workdir, *on_slurm(RUN_DIR.format("mnist5k", "tff", 0) + "/metrics.json",
                                    profile=tmp_path / "profile"))
    run_id = retry = None
    attempts = Attempts()
    try:
        run_id = wait_for(lambda: (m := re.search(r"SLURM run ID: (\S+)", output_of(proc))) and m.group(1), 60,
                          "SLURM run ID", proc)
        # The first attempt's log line, run.json and checkpoints, read as soon as it has written them (the
        # retry rewrites the log and run.json, and prunes resume checkpoints).
        said = wait_for(lambda: re.search(rf"signal {int(signal.SIGTERM)} (?:during epoch (\d+): saved \S+ after "
                                          r"(\d+) of|after epoch (\d+): saved)", attempts.read(log)),
                        180, "SIGTERM line in the training log", proc)
        record = read_json(run_dir / "run.json")
        index = read_json(workdir / record["store"] / "index.json")
        # Snakemake sees the failure at its next status poll and submits attempt 2: the run's second SLURM job
        # (it submits nothing else; sacct shows a job's comment only once the job has ended).
        retry_id = wait_for(lambda: len(jobs := sacct("--name", run_id)) == 2 and jobs[1]["JobID"], 120,
                            "second attempt of the training job", proc)
        try:  # give the retry the few seconds it needs to start (it need not: then there is nothing to check)
            retry = wait_for(lambda: (r := poll_json(run_dir / "run.json")) and r["slurm_job_id"] == retry_id and r,
                             30, "run.json of the retry", proc)
        except AssertionError:
            pass
    finally:
        stop(proc, grace=10)  # cancels the retry at once (snakemake itself then takes up to a minute to exit)
        if run_id:
            subprocess.run(["scancel", "--name", run_id])
    first, second = final_jobs("--name", run_id)
    assert first["Comment"] == second["Comment"] == train_comment("mnist5k", "tff", 0), (first, second)
    assert first["Timelimit"] == "00:01:00" and first["State"] == "FAILED" and first["Elapsed"] < "00:01:00", first
    assert second["Timelimit"] == "00:02:00", second
    assert record["status"] == "interrupted" and record["slurm_job_id"] == first["JobID"], (
        record["status"], record["slurm_job_id"], first, attempts.logs)
    # where the log says it saved: N-1 epochs and M steps ("during epoch N ... after M of"), or N epochs
    done = (int(said.group(1)) - 1, int(said.group(2))) if said.group(1) else (int(said.group(3)), 0)
    saved = [(name, ckpt) for name, ckpt in index.items()
             if ckpt["kind"] == "resume" and (ckpt["epoch"], ckpt["step"]) == done]
    assert len(saved) == 1, (said.group(0), index)
    [(name, ckpt)] = saved
    if retry:  # the retry resumed from that checkpoint
        assert retry["resumes"] and retry["resumes"][-1]["checkpoint"] == name, (retry["resumes"], name)
    with capsys.disabled():
        print(f"\nSIGTERM after {first['Elapsed']} of a 1-minute limit: checkpoint after epoch {ckpt['epoch']} "
              f"+ {ckpt['step']} steps; retry job {second['JobID']} with a 2-minute limit "
              + ("resumed from it" if retry else "was cancelled before it wrote run.json"))


class Attempts:
    """The training log of each attempt as last read (a retry's shell truncates the log): what a failure shows."""

    def __init__(self):
        self.logs = []

    def read(self, log: Path) -> str:
        text = log.read_text() if log.exists() else ""
        if not self.logs or len(text) < len(self.logs[-1]):
            self.logs.append(text)
        self.logs[-1] = text
        return text


def job_times(*args: str) -> list[dict]:
    """JobID, Comment, Start and End (as datetimes) of the jobs sacct selects by ARGS."""
    out = subprocess.run(["sacct", "-X", "-n", "-P", "-S", "now-6hours", "-o", "JobID,Comment,Start,End", *args],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    rows = [dict(zip(("JobID", "Comment", "Start", "End"), line.split("|"))) for line in out.splitlines()]
    return [{**row, "Start": datetime.fromisoformat(row["Start"]), "End": datetime.fromisoformat(row["End"])}
            for row in rows]


def lease_history(store: Path) -> list[tuple[datetime, str, str]]:
    """(time, taken|released, SLURM job) of each line of an identity's lease.log."""
    events = []
    for line in (store / "lease.log").read_text().splitlines():
        stamp, event, _ = line.split(" ", 2)
        job = re.search(r"SLURM job (\d+)", line)
        events.append((datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z"), event, job and job.group(1)))
    return events


def test_a_restarted_workflow_waits_for_the_jobs_still_running(tmp_path, capsys):
    """Snakemake is SIGKILLed while a training job runs; SLURM keeps the job. `snakemake --unlock` and the same
    command again submit the job a second time (the plugin cannot reattach): the copy waits for the first,
    which names it, and ends from its results. The results equal an uninterrupted run's, the lease history
    shows one holder at a time although sacct shows both jobs at once, and the audit passes."""
    settings = {"epochs": 16, "eval_epochs": [8, 16], "width": 0.0625, "batch_size": 100}
    config = grid(entry("restart", ["tff"], [0], settings))
    workdir = workflow(tmp_path / "slurm", config)
    run_dir = workdir / RUN_DIR.format("mnist5k", "tff", 0)
    first = start(workdir, *on_slurm())
    second = None
    try:
        started = wait_for(lambda: (r := poll_json(run_dir / "run.json")) and r.get("epoch_wall_s") and r, 180,
                           "first epoch of the training job", first)
        first.kill()  # SIGKILL: no clean-up, the SLURM job keeps running
        first.wait()
        first_job = started["slurm_job_id"]
        unlock = subprocess.run([sys.executable, "-m", "snakemake", "--unlock", *on_slurm()[1:]], cwd=workdir,
                                capture_output=True, text=True, timeout=120)
        assert unlock.returncode == 0, unlock.stderr[-2000:]
        second = start(workdir, *on_slurm())
        local = workflow(tmp_path / "local", config)  # the uninterrupted reference, meanwhile
        snakemake(local, "--cores", "1", "--configfile", "test.yaml")
        output = finish(second, 400)
    finally:
        for proc in (first, second):
            if proc is not None:
                stop(proc)
    assert second.returncode == 0, output[-4000:]
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    [retry] = job_times("--name", run_id)
    [original] = job_times("-j", first_job)
    assert retry["Start"] < original["End"], (original, retry)  # two copies of the job existed at once
    log = (workdir / "logs/train/mnist5k/s/tff/seed0.log").read_text()
    assert re.search(rf"waiting for the run directory: held by \S+ pid \d+, SLURM job {first_job}, since", log), log
    assert "is complete in" in log and not re.search(r"epoch \d+/16: loss", log)  # the copy trained nothing

    record = read_json(run_dir / "run.json")
    assert record["status"] == "complete" and record["slurm_job_id"] == first_job and record["resumes"] == []
    events = lease_history(workdir / record["store"])
    assert [(event, job) for _, event, job in events] == [
        ("taken", first_job), ("released", first_job), ("taken", retry["JobID"]), ("released", retry["JobID"])]
    assert events[1][0] <= events[2][0]  # one holder at a time
    assert_same_results(run_dir, local / RUN_DIR.format("mnist5k", "tff", 0),
                        logs=("eval.csv", "ensemble.csv", "steps.csv"))
    assert "PASSED" in (workdir / "results/audit.txt").read_text()
    with capsys.disabled():
        print(f"\nrestart: job {retry['JobID']} started {retry['Start']:%H:%M:%S}, while job {first_job} ran until "
              f"{original['End']:%H:%M:%S}; it waited and trained nothing")


PACKING = ("--groups", "train_model=pack", "--group-components", "pack=2", "--set-resource-scopes", "gpu=local",
           "--resources", "gpu=1")  # the README's packing recipe, two runs per SLURM job


def test_packed_training_jobs_keep_their_gpu(tmp_path):
    """Two training runs packed into one SLURM job: the job asks for one GPU (the runs take turns on it, as the
    plugin runs a group's jobs one after another), and each packed run is still given it (--gpus 1)."""
    settings = {"epochs": 1, "width": 0.0625, "batch_size": 100, "subset_train": 200, "subset_test": 100}
    workdir = workflow(tmp_path / "wf", grid(entry("packed", ["tff", "vff"], [0], settings), gpu=1))
    code, output, run_id = run_on_slurm(workdir, *on_slurm("train_all"), *PACKING, "--verbose")
    assert code == 0, output[-4000:]
    calls = re.findall(r"^sbatch call: (sbatch .*)$", output, re.M)
    assert len(calls) == 1 and "--gpus=1" in calls[0].split(" --wrap=")[0], calls
    [job] = final_jobs("--name", run_id)
    assert job["State"] == "COMPLETED" and "gres/gpu=1" in job["AllocTRES"], job
    commands = re.findall(r"python -m trifecta\.cli train .*", output)
    assert len(commands) == 2 and all(" --gpus 1 " in c for c in commands), commands
    for algo in ("tff", "vff"):
        assert read_json(workdir / RUN_DIR.format("mnist5k", algo, 0) / "run.json")["slurm_job_id"] == job["JobID"]
