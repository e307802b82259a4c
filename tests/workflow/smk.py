"""Helpers for whole-workflow tests: a copy of the workflow in tmp_path, snakemake runs, dry-run parsing.

The copy holds Snakefile, config.yaml, workflow/, envs/, slurm/ and src/trifecta/, committed to a git repository
of its own, so a test can edit the copied package and see what Snakemake would rerun (the rules run the copy's
src/, and the code hashes come from it).
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COPIED = ("Snakefile", "config.yaml", "workflow", "envs", "slurm")

# Stands in for the copy's `trifecta` command (src/trifecta/cli.py, which the rules run) in rerun tests: `train`
# writes what a finished run writes (metrics.json, eval.csv, ensemble.csv and steps.csv of a 6-layer net, one
# evaluation at the last epoch); collect, tables, scorecard and interim are the real commands; every other
# command only creates the files it is asked to write.
FAKE_CLI = """\
import importlib, json, sys
from pathlib import Path

REAL = {"collect": "analysis.collect", "tables": "analysis.tables", "scorecard": "analysis.scorecard",
        "interim": "analysis.interim"}
args = sys.argv[1:]
opt = lambda name: args[args.index(name) + 1]
if args[0] == "train":
    out = Path(opt("--out"))
    out.mkdir(parents=True, exist_ok=True)
    settings = dict(a.split("=", 1) for a in args[args.index("--set") + 1::2]) if "--set" in args else {}
    epoch = int(settings.get("epochs", 100))
    layers = range(1, 7)
    (out / "eval.csv").write_text("epoch,layer,accuracy,max_goodness,max_abs_weight\\n"
                                  + "".join(f"{epoch},{k},{0.5 + k / 100},3.0,0.2\\n" for k in layers))
    (out / "ensemble.csv").write_text(f"epoch,last_k,accuracy\\n{epoch},3,0.55\\n")
    (out / "steps.csv").write_text("epoch,step,layer,loss,separation,g_pos,g_neg,grad_norm\\n"
                                   + "".join(f"1,0,{k},0.7,0.1,1.1,1.0,1.0\\n" for k in layers))
    identity = {"dataset": opt("--dataset"), "arch": opt("--arch"), "algo": opt("--algo"),
                "seed": int(opt("--seed")), "settings": {**settings, "last_k": 3}}
    (out / "metrics.json").write_text(json.dumps({"identity": identity, "identity_sha256": "0" * 16,
                                                  "evals": {str(epoch): {"acc_last": 0.56, "acc_last3": 0.55}}}))
elif args[0] in REAL:  # the real commands
    sys.exit(importlib.import_module("trifecta." + REAL[args[0]]).main(args[1:]))
else:  # selftest, probe, export-weights, figure, lineage, audit, crate: the files they would write
    for flag in ("--out", "--png", "--pdf", "--lineage", "--json"):
        if flag in args:
            out = Path(opt(flag))
            out.parent.mkdir(parents=True, exist_ok=True)
            if not out.exists() or out.read_text() != " ".join(args):  # as the audit: the same report kept
                out.write_text(" ".join(args))
"""

# A SLURM client whose controller is down makes every snakemake start wait about 10 s (the SLURM executor
# plugin runs `scontrol show config` when it is imported, and sacct or sacctmgr to guess an account). These
# tests plan or run locally and need no SLURM: the clients answer "no" at once.
FAKE_SLURM = "#!/bin/sh\nexit 1\n"
SLURM_CLIENTS = ("scontrol", "sacct", "sacctmgr", "sinfo", "squeue")


def copy_workflow(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    shutil.copytree(REPO / "src" / "trifecta", dest / "src" / "trifecta",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(dest), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "a copy of the workflow"]):
        subprocess.run([*git, *command], check=True, capture_output=True)  # a clone, as users run it: runs
    return dest  # record its commit (the rules run the copy's src/)


def fake_commands(workdir: Path) -> None:
    """Make the copy's `trifecta` the stand-in FAKE_CLI (its rules run the copy's src/trifecta/cli.py)."""
    (workdir / "src/trifecta/cli.py").write_text(FAKE_CLI)


def make_bin(folder: Path) -> Path:
    """A folder for PATH with SLURM clients that answer "no" at once."""
    folder.mkdir(parents=True, exist_ok=True)
    scripts = dict.fromkeys(SLURM_CLIENTS, FAKE_SLURM)
    for name, text in scripts.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder


def snakemake(workdir: Path, *args, bin_dir: Path | None = None, check: bool = True, timeout: float = 600,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """Run snakemake in `workdir` (with `env` added to the environment); the venv's bin (its `python` runs the rules'
    commands) and `bin_dir` go first on PATH."""
    env = {**os.environ, **(env or {})}
    path = [str(Path(sys.executable).parent), env.get("PATH", "")]
    if bin_dir is not None:
        path.insert(0, str(bin_dir))
    env["PATH"] = os.pathsep.join(path)
    result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def planned_jobs(result: subprocess.CompletedProcess) -> list[tuple[str, str]]:
    """(rule, output) of each job a dry run lists (jobs without output, like `all`, are left out)."""
    jobs, rule = [], None
    for line in (result.stdout + result.stderr).splitlines():
        match = re.match(r"^(?:local)?rule (\w+):$", line)
        if match:
            rule = match.group(1)
        elif rule and line.startswith("    output: "):
            jobs.append((rule, line.removeprefix("    output: ")))
            rule = None
    return jobs


def job_counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table of a dry run: rule -> number of jobs."""
    text = result.stdout + result.stderr
    table = text[text.index("Job stats:"):]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m.group(1) != "total"}


def write_config(workdir: Path, config: dict) -> None:
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def read_config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config.yaml").read_text())


# A small grid: entry `pair` has 2 algos x 2 seeds, entry `single` one run with different settings, and the
# analysis of `pair`: probes, figures 1, 3, 6, 8 and 10 and the stand-ins of Table 2.
TINY_ANALYSIS = yaml.safe_load(textwrap.dedent("""\
    tables:
      stand_in:
        table2: {dataset: {mnist: mnist5k}, epoch: {"10": 1, "100": 2}}
    probe: {activate: true, dataset: mnist5k, arch: s, algos: [tff, vff], epoch: null, epochs: 2, gpu: 0}
    figures:
      activate: true
      fig1: {dataset: mnist5k, arch: s, algos: [tff, vff]}
      fig3: {dataset: mnist5k, arch: s, algos: [tff]}
      fig6: {dataset: mnist5k, arch: s, algos: [tff], epochs: [2]}
      fig8: {dataset: mnist5k, arch: s, algos: [tff, vff]}
      fig10: {dataset: mnist5k, arch: s, algos: [tff, vff], layers: [6]}
    audit: {activate: true}
    """))

TINY_RUNS = yaml.safe_load(textwrap.dedent("""\
    - name: pair
      datasets: [mnist5k]
      archs: [s]
      algos: [tff, vff]
      seeds: [0, 1]
      settings: {epochs: 2, eval_epochs: [1, 2], width: 0.0625}
    - name: single
      datasets: [mnist5k]
      archs: [t]
      algos: [pep]
      seeds: [0]
      settings: {epochs: 3, batch_size: 64}
    """))
