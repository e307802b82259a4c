"""Reading a run's kept model snapshots (probes, the weights of Figure 10, lineage, audit): where each is, and
its weights checked against the sha256 in run.json. Training writes them (training/checkpoint.py) and never reads
them back, so this module is no training code: editing it reruns what reads snapshots, not the training.
"""

from pathlib import Path

from trifecta.training.checkpoint import load_checkpoint
from trifecta.training.rundir import OWN_STORE, RECORD, read_json


def resolve_snapshot(run_dir: Path, recorded_path: str) -> Path:
    """A snapshot where run.json says, else at the same place under the run directory (a moved results/)."""
    path = Path(recorded_path)
    if path.exists():
        return path
    moved = Path(run_dir) / OWN_STORE / path.parent.name / path.name
    return moved if moved.exists() else path


def load_snapshot(run_dir: Path, epoch: int | None = None) -> tuple[dict, dict, int, str]:
    """A run's model snapshot at `epoch` (default: its last), checked against the sha256 in its run.json:
    (snapshot state, run record, epoch, sha256)."""
    record = read_json(Path(run_dir) / RECORD)
    snapshots = record.get("snapshots", {})
    if not snapshots:
        raise ValueError(f"{run_dir}/run.json lists no snapshots")
    epoch = max(map(int, snapshots)) if epoch is None else epoch
    if str(epoch) not in snapshots:
        raise ValueError(f"{run_dir} has no snapshot at epoch {epoch} (has {', '.join(sorted(snapshots, key=int))}); "
                         "add it to the run's snapshot_epochs")
    entry = snapshots[str(epoch)]
    return load_checkpoint(resolve_snapshot(run_dir, entry["path"]), entry["sha256"]), record, epoch, entry["sha256"]
