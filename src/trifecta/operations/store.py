"""The run store: one folder per run identity (STORE/<identity hash>/: checkpoints, snapshots, logs, run.json,
metrics.json), shared by every run directory that shows one of them; and `trifecta store`, which lists the
store's identities and prunes those nothing uses. No torch.

    finished(store)                    every identity whose run completed: {folder: its identity}
    continuable(store, identity, cfg)  the finished identity a longer run of `identity` goes on from, or None

    trifecta store [--config config.yaml] [--configfile OVERLAY ...] [--train-dir results/train]
    trifecta store prune [--yes] [same options]

The listing gives each identity's size, state (complete: metrics.json names it; failed: run.json says so;
partial: anything else, a running or interrupted run), who uses it (the run directories under --train-dir that
show it, in metrics.json or run.json, and the runs of the grid that ask for it), its last writer (lease.log) and
the time since it was last written, then the totals. A run of the grid asks for an identity when the config,
this checkout's code and the data files give the run that identity, with its recipe on a CPU or a GPU; an
identity of a dataset whose files cannot be read is kept, since that cannot be judged. `prune` lists the
identities nothing uses, complete, partial and failed alike; with --yes it removes each under its lease taken
without waiting, so one a running job holds is kept and named. Only folders named by 16 hex digits are
identities: environments/ (shared by many runs) and any other folder are never touched.
"""

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import sys
import time
from pathlib import Path

from trifecta.planning.grid import Grid, GridError

from trifecta.planning.configfile import load_config
from trifecta.operations.lease import Lease, describe
from trifecta.identity.codehash import data_checksums, identity_sha256
from trifecta.planning.runs import TRAIN_DIR
from trifecta.planning.settings_help import format_duration
from trifecta.operations.status import run_dirs
from trifecta.training.settings import Settings, settings_from_dict
from trifecta.training.registry import DatasetError
from trifecta.training.rundir import INDEX, RECORD, SUMMARY, read_json

SAME_RUN = ("dataset", "arch", "algo", "seed", "recipe", "training_code", "data")  # a continued run shares these
IDENTITY = re.compile(r"[0-9a-f]{16}")  # an identity's folder name: its hash; other folders are not identities
DEVICES = ("cpu", "cuda")  # the recipes a grid run may compute with: a job with a GPU or without one


# ---- Finished identities ----

def finished(store: Path) -> dict[Path, dict]:
    """{folder: identity} of every identity of the store whose metrics.json (written last) names it."""
    found = {}
    for path in sorted(Path(store).glob(f"*/{SUMMARY}")):
        try:
            summary = read_json(path)
        except (OSError, ValueError):
            continue
        if summary.get("identity_sha256") == path.parent.name:
            found[path.parent] = summary["identity"]
    return found


def continuable(store: Path, identity: dict, cfg: Settings) -> Path | None:
    """The store folder of the longest finished run that a run of `identity` (settings `cfg`) continues: the same
    run, recipe, code and data, settings that differ only as Settings.continues allows, and its final resume
    checkpoint kept. None if there is none."""
    best, best_epochs = None, 0
    for folder, earlier in finished(store).items():
        if any(earlier.get(key) != identity[key] for key in SAME_RUN):
            continue
        try:
            shorter = settings_from_dict(earlier["settings"])
        except (ValueError, TypeError):
            continue
        final = (shorter.epochs, 0)
        index = read_json(folder / INDEX) if (folder / INDEX).exists() else {}
        kept = any(e["kind"] == "resume" and (e["epoch"], e["step"]) == final for e in index.values())
        if kept and cfg.continues(shorter) and shorter.epochs > best_epochs:
            best, best_epochs = folder, shorter.epochs
    return best


# ---- What the store holds ----

def identities(store: Path) -> list[Path]:
    """The store's identity folders, sorted by name."""
    store = Path(store)
    return sorted(p for p in store.iterdir() if p.is_dir() and IDENTITY.fullmatch(p.name)) if store.is_dir() else []


def _read(path: Path) -> dict:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return {}  # none, or half written by a run that was killed


def lease_of(folder: Path) -> Lease:
    """The lease `trifecta train` holds on an identity while it writes there."""
    return Lease(folder, f"store of identity {folder.name}")


@contextlib.contextmanager
def taken(folder: Path, create: bool):
    """The identity's lease taken without waiting: yields True while this process holds it, False while another
    does. A folder without a lease file has no holder; create=False leaves it without one."""
    path = lease_of(folder).path
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT if create else os.O_RDONLY, 0o644)  # flock needs no write
    except FileNotFoundError:
        yield True
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        mine = True
    except BlockingIOError:
        mine = False
    try:
        yield mine
    finally:
        os.close(fd)  # gives the lock back


def holder(folder: Path) -> str | None:
    """Who holds the identity's lease (a running job), or None."""
    with taken(folder, create=False) as mine:
        return None if mine else describe(lease_of(folder).read_holder())


def last_writer(folder: Path, record: dict) -> str:
    """The last process that took the identity's lease (lease.log), else the host run.json names."""
    lease = lease_of(folder).path
    log = lease.with_name(lease.name + ".log")  # operations/lease.py's history beside the lease
    taken_lines = [line for line in log.read_text().splitlines() if " taken by " in line] if log.exists() else []
    if taken_lines:
        return taken_lines[-1].split(" taken by ", 1)[1].split(", since ")[0]
    job = f", SLURM job {record['slurm_job_id']}" if record.get("slurm_job_id") else ""
    return f"{record['host']}{job}" if record.get("host") else "—"


def describe_identity(folder: Path, now: float) -> dict:
    """An identity's size, state, identity (None without a record), last writer, age and lease holder."""
    summary, record = _read(folder / SUMMARY), _read(folder / RECORD)
    complete = summary.get("identity_sha256") == folder.name
    state = "complete" if complete else "failed" if record.get("status") == "failed" else "partial"
    identity = summary.get("identity") if complete else record if record.get("dataset") else None
    files = [p.stat() for p in folder.rglob("*") if p.is_file()]
    newest = max([folder.stat().st_mtime] + [f.st_mtime for f in files])
    return {"name": folder.name, "folder": folder, "state": state, "bytes": sum(f.st_size for f in files),
            "dataset": (identity or {}).get("dataset"), "device": ((identity or {}).get("recipe") or {}).get("device"),
            "writer": last_writer(folder, record), "age_s": now - newest, "held": holder(folder)}


# ---- Who uses an identity ----

def shown(train_dir: Path) -> dict[str, list[str]]:
    """{identity hash: [run directory, ...]}: what each run directory under train_dir shows (metrics.json and
    run.json; both count, should a killed copy have left them apart)."""
    found = {}
    for run in run_dirs(Path(train_dir)):
        folder = run.dir(str(train_dir))
        names = {_read(Path(folder) / name).get("identity_sha256") for name in (SUMMARY, RECORD)} - {None}
        for name in names:
            found.setdefault(name, []).append(folder)
    return found


def asked(grid: Grid, devices, data_dir: Path) -> tuple[dict[str, list[str]], dict[str, str]]:
    """{identity hash: ["grid entry NAME: RUN", ...]} of the identities the grid's runs have now on each device
    type, and {dataset: why its identities cannot be judged} for datasets whose files cannot be read."""
    found, unreadable, checksums = {}, {}, {}
    for run, entry in grid.runs.items():
        if run.dataset not in checksums:  # each dataset's files hashed once
            try:
                checksums[run.dataset] = data_checksums(run.dataset, data_dir)
            except (DatasetError, OSError) as err:
                checksums[run.dataset] = None
                unreadable[run.dataset] = f"dataset {run.dataset}: cannot be read ({err})"
        if checksums[run.dataset] is None:
            continue
        for device in devices:
            expected = {**grid.expected_identity(run, device), "data": checksums[run.dataset]}
            found.setdefault(identity_sha256(expected), []).append(f"grid entry {entry['name']}: {run.id}")
    return found, unreadable


def survey(store: Path, train_dir: Path, grid: Grid, data_dir: Path) -> list[dict]:
    """Every identity described, with the run directories that show it, the grid runs that ask for it, why it
    cannot be judged (`unjudged`, else None) and whether anything uses it."""
    now = time.time()
    found = [describe_identity(folder, now) for folder in identities(store)]
    if not found:
        return []
    devices = sorted(set(DEVICES) | {e["device"] for e in found if e["device"]})
    shows, (asks, unreadable) = shown(train_dir), asked(grid, devices, data_dir)
    for e in found:
        if e["dataset"] is None:  # no record: any dataset whose files cannot be read might be its
            why = list(unreadable.values())
        else:
            why = [unreadable[e["dataset"]]] if e["dataset"] in unreadable else []
        e.update(shown_by=shows.get(e["name"], []), asked_by=asks.get(e["name"], []), unjudged="; ".join(why) or None)
        e["used"] = bool(e["shown_by"] or e["asked_by"] or e["unjudged"])
    return found


# ---- Listing and pruning ----

def size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def row(e: dict) -> str:
    """An identity's name, state, size and time since it was last written."""
    return f"{e['name']}  {e['state']:<8}  {size(e['bytes']):>9}  {format_duration(e['age_s']):>7}"


def listing(found: list[dict], store: Path) -> str:
    """One line per identity (name, state, size, age, last writer), its users indented below, then the totals."""
    if not found:
        return f"no identities in {store}"
    lines = [f"{'IDENTITY':<16}  {'STATE':<8}  {'SIZE':>9}  {'AGE':>7}  LAST WRITER"]
    for e in found:
        lines.append(f"{row(e)}  {e['writer']}")
        lines += [f"  shown by {folder}" for folder in e["shown_by"]]
        lines += [f"  asked for by {run}" for run in e["asked_by"]]
        lines += [f"  held by {e['held']}"] * bool(e["held"])
        lines += [f"  cannot judge: {e['unjudged']}"] * bool(e["unjudged"])
        if not e["used"]:
            lines.append("  unused: no run directory shows it and no run of the grid asks for it")
    states = ", ".join(f"{sum(e['state'] == s for e in found)} {s}" for s in ("complete", "partial", "failed"))
    unused = [e for e in found if not e["used"]]
    lines += ["", f"{len(found)} identities, {size(sum(e['bytes'] for e in found))}: {states}; {len(unused)} unused "
                  f"({size(sum(e['bytes'] for e in unused))}): `trifecta store prune` lists them"]
    return "\n".join(lines)


def remove(folder: Path) -> str | None:
    """Delete an identity's folder under its lease, taken without waiting; who holds it if another process does."""
    with taken(folder, create=True) as mine:
        if not mine:
            return describe(lease_of(folder).read_holder())
        (folder / SUMMARY).unlink(missing_ok=True)  # first: a folder half removed is never taken for complete
        shutil.rmtree(folder)
    return None


def prune(found: list[dict], yes: bool) -> list[str]:
    """What nothing uses: listed, or with `yes` removed; identities held by a job or not judged are named."""
    unused = [e for e in found if not e["used"]]
    lines = [f"kept {e['name']}: {e['unjudged']}" for e in found if e["unjudged"]]
    if not unused:
        return ["nothing to remove: every identity is used", *lines]
    if not yes:
        free = [e for e in unused if not e["held"]]
        return [f"would remove {count(free)}, {size(sum(e['bytes'] for e in free))} "
                "(`trifecta store prune --yes` removes them):",
                *[f"  {row(e)}" for e in free],
                *[f"kept {e['name']}: its lease is held by {e['held']} (a running job)" for e in unused if e["held"]],
                *lines]
    removed = []
    for e in unused:
        who = remove(e["folder"])
        if who is None:
            removed.append(e)
            lines.append(f"removed {e['name']} ({e['state']}, {size(e['bytes'])})")
        else:
            lines.append(f"not removed {e['name']}: its lease is held by {who} (a running job)")
    return [*lines, f"removed {count(removed)}, {size(sum(e['bytes'] for e in removed))}"]


def count(found: list) -> str:
    return f"{len(found)} identit{'y' if len(found) == 1 else 'ies'}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="trifecta store", description="list the run store's identities; `prune`: "
                                "those nothing uses (--yes removes them)")
    p.add_argument("action", nargs="?", choices=["prune"], help="list (with --yes remove) what nothing uses")
    p.add_argument("--yes", action="store_true", help="with prune: remove them")
    p.add_argument("--config", help="workflow config (default: ./config.yaml)")
    p.add_argument("--configfile", nargs="+", action="extend", default=[], help="overlays, applied in order")
    p.add_argument("--train-dir", type=Path, default=Path(TRAIN_DIR), help=f"run directories (default: {TRAIN_DIR})")
    args = p.parse_args(argv)
    if args.yes and args.action != "prune":
        p.error("--yes goes with prune")
    try:
        config = load_config([args.config or "config.yaml", *args.configfile])
        grid = Grid.from_config(config)
    except (GridError, KeyError, TypeError) as err:
        print(f"trifecta store: error: config: {err}", file=sys.stderr)
        return 2
    store = Path(config.get("store_dir", "resources/store"))
    found = survey(store, args.train_dir, grid, Path(config.get("data_dir", "resources/data")))
    print(listing(found, store) if args.action is None else "\n".join(prune(found, args.yes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
