"""How fast is the workflow itself? Prints the seconds Snakemake needs to plan the paper grid and to find
nothing to do in a completed one: `python benchmarks/workflow_speed.py [--repeat N]` (from the repository root,
in the venv; no cluster, GPU or network needed).

1. Copies Snakefile, config.yaml, workflow/, envs/, slurm/ and src/trifecta/ into a temporary folder.
2. Times `snakemake --profile slurm -n` there: planning all runs of config.yaml.
3. Completes the grid cheaply: a stand-in for the copy's `trifecta` command (its src/trifecta/cli.py) writes each
   run's metrics.json and eval.csv in milliseconds (the real `trifecta collect` then builds the tables), run with
   the local executor so that Snakemake records its metadata as after real training.
4. Times `snakemake --profile slurm` in the completed grid: a no-op rerun ("Nothing to be done").

Each figure is the median of --repeat runs, start-up of Python and Snakemake included. Where a SLURM client
is installed but its controller does not answer, the SLURM plugin's `scontrol show config` at import costs
up to 10 s per start; the script then shadows scontrol for the measurement and says so.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.workflow.smk import copy_workflow, fake_commands, make_bin, snakemake  # noqa: E402


def scontrol_answers() -> bool:
    if shutil.which("scontrol") is None:
        return True  # no SLURM client: the plugin's check fails at once
    try:
        subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=2, check=True)
        return True
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
        return False


def timed(workdir, *args, bin_dir, repeat) -> tuple[float, str]:
    times, output = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        result = snakemake(workdir, *args, bin_dir=bin_dir)
        times.append(time.perf_counter() - start)
        output = result.stdout + result.stderr
    return statistics.median(times), output


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per figure (the median is printed)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        workdir = copy_workflow(root / "wf")
        plain_bin = root / "bin_plain"
        plain_bin.mkdir()
        shadow = not scontrol_answers()
        if shadow:
            print("note: `scontrol show config` does not answer here; scontrol is shadowed while timing")
            plain_bin = make_bin(root / "bin_plain")
        plan_s, output = timed(workdir, "--profile", "slurm", "-n", bin_dir=plain_bin, repeat=args.repeat)
        jobs = output[output.index("Job stats:"):].split("total")[1].split()[0]

        real_cli = (workdir / "src/trifecta/cli.py").read_text()
        fake_commands(workdir)
        start = time.perf_counter()
        snakemake(workdir, "--cores", "4", "--quiet", "all", bin_dir=plain_bin)
        complete_s = time.perf_counter() - start
        (workdir / "src/trifecta/cli.py").write_text(real_cli)

        noop_s, output = timed(workdir, "--profile", "slurm", bin_dir=plain_bin, repeat=args.repeat)
        assert "Nothing to be done" in output, output[-2000:]
    print(f"plan the paper grid ({jobs} jobs), snakemake --profile slurm -n: {plan_s:.2f} s")
    print(f"no-op rerun of the completed grid, snakemake --profile slurm:   {noop_s:.2f} s")
    print(f"(completing the grid with a stand-in trifecta took {complete_s:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
