"""`trifecta status`: a read-only view of a grid's training runs, for watching a running workflow.

    trifecta status [--config config.yaml] [--configfile OVERLAY ...] [--train-dir results/train] [--watch S] [--json]

One row per run of the grid (./config.yaml by default, overlays applied as `snakemake --configfile` does), plus
run directories under --train-dir that it does not list (marked): state, epochs done/total, the last layer's
test accuracy at the last evaluation (eval.csv), mean epoch time and ETA (run.json's epoch_wall_s), the device
(cpu, cuda, or the GPUs a job took on a machine without SLURM), SLURM job.
  pending      no run.json yet: not started (queued, or waiting for its inputs)
  running      run.json says running; "stalled?" when run.json, rewritten after every epoch, is older than
               max(10 min, 5 mean epochs): a job killed outright (node failure, out of memory) cannot update
               its record. No SLURM command is asked; check with squeue.
  interrupted  a signal stopped it after saving a checkpoint (preemption, time limit); its next attempt resumes
  failed       an error in the run (the note shows it); rerunning the workflow resumes it from its checkpoint
  complete     run.json says complete and metrics.json, written last, is there
  outdated     a grid run that started with other settings, another recipe or other code than the config and the
               checkout give it now: the workflow trains it again (the note says what changed; `trifecta why`
               says in detail)
The summary counts states and gives device-hours (GPU and CPU epochs together, the GPU share named): spent =
the sum of measured epoch times; left = per unfinished grid run, remaining epochs x its mean epoch time or, with
none measured, the mean of complete runs of the same dataset and architecture. It also gives the grid's time
requests: the sum of the first attempts' SLURM --time of the unfinished grid runs, as the workflow plans them
from the epoch times in the config's store_dir (planning/runtimes.py), counted by where they come from, and the hours the
complete grid runs measured. Reads run.json and eval.csv only (never steps.csv), imports neither torch nor pandas.
"""

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from trifecta.planning import runtimes
from trifecta.planning.grid import Grid, GridError
from trifecta.planning.configfile import load_config
from trifecta.identity.codehash import identity_differences
from trifecta.planning.runs import TRAIN_DIR, Run
from trifecta.planning.settings_help import format_duration as duration
from trifecta.training.settings import Settings, settings_from_dict, resolved_recipe
from trifecta.training.rundir import EVAL, RECORD, SUMMARY, read_json, read_rows

STATES = ("pending", "running", "interrupted", "failed", "complete", "outdated")
STALL_S = 600  # a "running" record older than max(STALL_S, 5 mean epochs) is marked "stalled?"
NONE = "—"


def load_grid(config: str | None, overlays: list[str]) -> Grid | None:
    """The grid of the config with its overlays applied in order (None without either); raises GridError."""
    files = ([config] if config else []) + list(overlays)
    if not files:
        return None
    try:
        return Grid.from_config(load_config(files))
    except (KeyError, TypeError) as err:  # the workflow checks the config against its schema; here, only this
        raise GridError(f"config: missing or malformed key {err}") from None


def run_dirs(root: Path) -> list[Run]:
    """Every run directory under root (DATASET/ARCH/ALGO/seedN), sorted."""
    runs = []
    for path in root.glob("*/*/*/seed*"):
        try:
            runs.append(Run.parse(path.relative_to(root).as_posix()))
        except ValueError:
            continue
    return sorted(run for run in runs if Path(run.dir(str(root))).is_dir())


def last_accuracy(path: Path) -> float | None:
    """Test accuracy (%) of the last layer at the highest evaluated epoch in eval.csv, or None."""
    try:
        rows = [r for r in read_rows(path) if (r.get("epoch") or "").isdigit()]
    except (OSError, csv.Error):
        return None
    if not rows:
        return None
    last = max(int(r["epoch"]) for r in rows)
    accuracy = [r["accuracy"] for r in rows if int(r["epoch"]) == last][-1]
    return 100 * float(accuracy) if accuracy else None


def read_run(run: Run, root: Path, total: int | None, now: float, expected: dict | None = None,
             settings: Settings | None = None) -> dict:
    """One row: state, epochs done/total and left, last accuracy, mean epoch time, ETA, SLURM job id, note.
    `expected`: the identity's config, recipe and code that the grid asks for now, `settings` its settings (None
    outside the grid): an outdated run is trained again, or continued when only its epochs grew."""
    out, note = Path(run.dir(str(root))), ""
    row = {"run": run.id, "state": "pending", "epochs_done": 0, "epochs_total": total, "epochs_left": total or 0,
           "accuracy": None, "s_per_epoch": None, "eta_s": None, "slurm_job_id": None, "device": None, "gpus": None,
           "wall_s": 0.0, "stalled": False, "note": ""}
    try:
        age = now - (out / RECORD).stat().st_mtime
        record = read_json(out / RECORD)
    except FileNotFoundError:
        return row
    except (OSError, ValueError) as err:
        return {**row, "state": "failed", "note": f"run.json unreadable: {err}"}
    times = [float(s) for s in record.get("epoch_wall_s", {}).values()]
    state = record.get("status", "running")
    if state == "complete" and not (out / SUMMARY).exists():
        state = "running"  # metrics.json is written right after run.json says complete
    mean = sum(times) / len(times) if times else None
    total = total or record.get("settings", {}).get("epochs")
    if state == "running" and age > max(STALL_S, 5 * (mean or 0)):
        row["stalled"], note = True, f"stalled? (run.json {age / 60:.0f} min old)"
    elif state == "failed":
        note = diverged(record["diverged"]) if record.get("diverged") else record.get("error", "")
    if changed := outdated(record, expected, settings):
        goes_on = state == "complete" and continued(record.get("settings", {}), settings)
        state, note = "outdated", f"{changed} changed since it ran: the workflow " + (
            f"continues it after epoch {len(times)}" if goes_on else "trains it again")
        done = len(times) if goes_on else 0
    else:
        done = len(times)
    row.update(state=state, epochs_done=len(times), epochs_total=total, accuracy=last_accuracy(out / EVAL),
               s_per_epoch=mean, slurm_job_id=record.get("slurm_job_id"), wall_s=sum(times), note=note,
               device=(record.get("device") or {}).get("type"), gpus=(record.get("gpu_slots") or {}).get("devices"),
               epochs_left=max((total or 0) - done, 0))
    row["eta_s"] = row["epochs_left"] * mean if mean is not None and total else None
    return row


def diverged(where: dict) -> str:
    """run.json's `diverged` in words."""
    place = ", ".join(f"{key} {where[key]}" for key in ("epoch", "step", "layer") if key in where)
    return f"diverged at {place}: {where['what']} = {where['value']}"


def continued(recorded: dict, settings: Settings | None) -> bool:
    """Whether a finished run of the recorded settings is continued by the grid's (Settings.continues); a
    record without every setting is not."""
    if settings is None or not set(recorded) >= set(settings.identity_dict()):
        return False
    try:
        return settings.continues(settings_from_dict(recorded))
    except (ValueError, TypeError):
        return False


def outdated(record: dict, expected: dict | None, settings: Settings | None = None) -> str:
    """What differs between the run's record and what the grid asks for now ("" when nothing does): the
    settings it recorded (a hand-written record may hold a few), its recipe (the grid's precision on the device
    it ran on) and the code it can execute."""
    if expected is None:
        return ""
    if settings is not None and (record.get("recipe") or {}).get("device"):
        expected = {**expected, "recipe": resolved_recipe(settings.precision, record["recipe"]["device"])}
    recorded = record.get("settings", {})
    mine = {"settings": recorded, **{k: record[k] for k in ("training_code", "recipe") if record.get(k) is not None}}
    expected = {"settings": {k: v for k, v in expected["settings"].items() if k in recorded},
                **{k: expected[k] for k in ("training_code", "recipe") if k in mine and k in expected}}
    differences = [what for what, _, _ in identity_differences(mine, expected)]
    keys = [what.removeprefix("settings.") for what in differences if what.startswith("settings.")]
    recipe = [what.removeprefix("recipe.") for what in differences if what.startswith("recipe.")]
    return " and ".join([f"settings ({', '.join(keys)})"] * bool(keys) + [f"recipe ({', '.join(recipe)})"] * bool(recipe)
                        + ["its training code"] * ("training_code" in differences))


def collect(grid: Grid | None, root: Path) -> list[dict]:
    """The grid's runs in config order, then the run directories under root that the grid does not list."""
    now, rows, listed = time.time(), [], list(grid.runs) if grid else []
    for run in listed + [r for r in run_dirs(root) if grid is None or r not in grid.runs]:
        in_grid = None if grid is None else run in grid.runs
        expected = grid.expected_identity(run) if in_grid else None
        settings = grid.settings(run) if in_grid else None
        row = read_run(run, root, settings.epochs if in_grid else None, now, expected, settings)
        if in_grid is False:
            row["note"] = " ".join(["(not in the grid)", row["note"]]).strip()
        rows.append({**row, "in_grid": in_grid})
    return rows


def summary_of(rows: list[dict]) -> dict:
    """Counts per state, device-hours spent (and the GPU share) and left, and unfinished runs with no estimate."""
    counts, peers = dict.fromkeys(STATES, 0), {}  # peers: (dataset, arch) -> mean epoch times of complete runs
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
        if row["state"] == "complete" and row["s_per_epoch"] is not None:
            peers.setdefault(tuple(row["run"].split("/")[:2]), []).append(row["s_per_epoch"])
    left, unknown = 0.0, 0
    for row in rows:
        if row["state"] == "complete" or row["in_grid"] is False:
            continue
        same = peers.get(tuple(row["run"].split("/")[:2]), [])
        mean = row["s_per_epoch"] if row["s_per_epoch"] is not None else sum(same) / len(same) if same else None
        if mean is None or not row["epochs_total"]:
            unknown += 1
        else:
            left += row["epochs_left"] * mean
    return {"runs": len(rows), "states": counts, "stalled": sum(row["stalled"] for row in rows),
            "device_hours_spent": sum(row["wall_s"] for row in rows) / 3600,
            "gpu_hours_spent": sum(row["wall_s"] for row in rows if row["device"] == "cuda") / 3600,
            "device_hours_left": left / 3600, "runs_without_estimate": unknown}


def time_requests(grid: Grid | None, rows: list[dict]) -> dict:
    """The first attempts' time requests of the unfinished grid runs (hours, GPU-hours, count by source) and the
    epoch hours of the complete grid runs; {} without a grid, or with a config short of store_dir or resources."""
    if grid is None:
        return {}
    try:
        times, gpus = runtimes.epoch_times(grid.config["store_dir"]), grid.config["resources"]["gpu"]
        minutes, sources = 0, dict.fromkeys((runtimes.MEASURED, runtimes.OTHER_ALGO, runtimes.ESTIMATE), 0)
        for row in rows:
            if row["in_grid"] and row["state"] != "complete":
                run = Run.parse(row["run"])
                minutes += runtimes.train_minutes(grid, run, times)
                sources[runtimes.epoch_minutes(grid, run, times)[1]] += 1
    except (KeyError, TypeError):  # a config the workflow's schema would have completed or refused
        return {}
    done = [row for row in rows if row["in_grid"] and row["state"] == "complete"]
    return {"job_device": runtimes.job_device(grid), "hours_requested": minutes / 60,
            "gpu_hours_requested": minutes / 60 * gpus, "requests": sources,
            "runs_finished": len(done), "hours_measured": sum(row["wall_s"] for row in done) / 3600,
            "gpu_hours_measured": sum(row["wall_s"] for row in done if row["device"] == "cuda") / 3600}


def render_requests(summary: dict) -> str:
    """The time requests line: what the unfinished runs ask for, and what the complete ones measured."""
    sources = summary["requests"]
    asked = (f"{summary['gpu_hours_requested']:.1f} GPU-hours" if summary["job_device"] == "cuda"
             else f"{summary['hours_requested']:.1f} hours on the CPU")
    line = (f"requested: {asked} for {sum(sources.values())} unfinished runs (first attempts: "
            f"{sources[runtimes.MEASURED]} from measured epoch times, {sources[runtimes.OTHER_ALGO]} from another "
            f"algorithm's, {sources[runtimes.ESTIMATE]} from the config's estimates)")
    if summary["runs_finished"]:
        line += (f"; the complete runs measured {summary['hours_measured']:.1f} hours of epochs "
                 f"({summary['gpu_hours_measured']:.1f} GPU-hours)")
    return line


def render(rows: list[dict], summary: dict) -> str:
    """The table (fixed-width columns under a header line) and the summary lines."""
    width = max([len("RUN")] + [len(row["run"]) for row in rows])
    line = f"{{:<{width}}}  {{:<11}}  {{:>9}}  {{:>6}}  {{:>8}}  {{:>7}}  {{:<8}}  {{:<10}}  {{}}"
    lines = [line.format("RUN", "STATE", "EPOCHS", "ACC %", "S/EPOCH", "ETA", "DEVICE", "SLURM", "NOTE")]
    for row in rows:
        epochs = f"{row['epochs_done']}/{row['epochs_total'] if row['epochs_total'] else '?'}"
        accuracy = NONE if row["accuracy"] is None else f"{row['accuracy']:.2f}"
        per_epoch = NONE if row["s_per_epoch"] is None else f"{row['s_per_epoch']:.1f}"
        eta = "done" if row["state"] == "complete" else duration(row["eta_s"])
        device = f"GPU {','.join(row['gpus'])}" if row["gpus"] else row["device"] or NONE
        lines.append(line.format(row["run"], row["state"], epochs, accuracy, per_epoch, eta, device,
                                 row["slurm_job_id"] or NONE, row["note"][:80]).rstrip())
    counts = ", ".join(f"{n} {state}" for state, n in summary["states"].items() if n or state != "outdated")
    stalled = f" ({summary['stalled']} of them stalled?)" if summary["stalled"] else ""
    unknown = summary["runs_without_estimate"]
    lines += ["", f"{summary['runs']} runs: {counts}{stalled}",
              f"device-hours spent: {summary['device_hours_spent']:.1f} (GPU {summary['gpu_hours_spent']:.1f}); "
              f"left: {summary['device_hours_left']:.1f} at measured epoch times"
              + (f", {unknown} unfinished runs without an estimate" if unknown else "")]
    if "hours_requested" in summary:
        lines.append(render_requests(summary))
    return "\n".join(lines)


def main(argv=None) -> int:
    """Print the table (or JSON) once, or redraw it every --watch seconds until Ctrl-C; 2 on a bad config."""
    p = argparse.ArgumentParser(prog="trifecta status", description=__doc__.split("\n")[0])
    p.add_argument("--config", help="workflow config (default: ./config.yaml when it exists)")
    p.add_argument("--configfile", nargs="+", action="extend", default=[], help="overlays, applied in order")
    p.add_argument("--train-dir", default=TRAIN_DIR, type=Path, help=f"run directories (default: {TRAIN_DIR})")
    p.add_argument("--watch", type=float, metavar="SECONDS", help="redraw every SECONDS until Ctrl-C")
    p.add_argument("--json", action="store_true", help="rows and summary as JSON")
    args = p.parse_args(argv)
    if args.watch is not None and args.watch <= 0:
        p.error("--watch: SECONDS must be > 0")
    config = args.config or ("config.yaml" if Path("config.yaml").exists() else None)
    try:
        grid = load_grid(config, args.configfile)
    except GridError as err:
        print(f"trifecta status: error: {err}", file=sys.stderr)
        return 2
    try:
        while True:
            rows = collect(grid, args.train_dir)
            summary = {**summary_of(rows), **time_requests(grid, rows)}
            text = json.dumps({"rows": rows, "summary": summary}, indent=1) if args.json else render(rows, summary)
            print(("\x1b[H\x1b[2J" if args.watch and not args.json else "") + text, flush=True)
            if not args.watch:
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
