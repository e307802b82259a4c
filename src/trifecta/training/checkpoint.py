"""Atomic, checksummed checkpoints in a run identity's store folder.

Each checkpoint is written to a temporary file and renamed into place; its sha256 goes into
`index.json` (also replaced atomically). Loading verifies the hash first, so a truncated or altered file is
reported and skipped, never unpickled. Resume checkpoints (the full training state) roll; snapshots (model
weights at chosen epochs, for probing and weight figures) are kept.
"""

import json
import logging
from pathlib import Path

import torch

from trifecta.training.rundir import INDEX, sha256_file, write_atomic, write_json_atomic

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt or does not match its recorded hash."""


def read_index(folder: Path) -> dict:
    path = folder / INDEX
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is corrupt ({err}); delete it to start the run again") from None


def save_checkpoint(folder: Path, kind: str, epoch: int, state: dict, step: int = 0) -> tuple[Path, str]:
    """Write `state` as `{kind}_epoch_NNNN[_step_SSSS].pt` and record its hash; returns (path, sha256).

    `epoch` counts completed epochs; `step` the steps done in the next one (a resume checkpoint written
    when a signal interrupted an epoch).
    kind "resume": the full training state; all but the two newest are pruned (the older one is the
    fallback if the newest turns out corrupt). kind "snapshot": model weights kept for later analyses.
    """
    path = folder / (f"{kind}_epoch_{epoch:04d}" + (f"_step_{step:04d}" if step else "") + ".pt")
    write_atomic(path, lambda f: torch.save(state, f))
    index = read_index(folder)
    sha256 = sha256_file(path)
    index[path.name] = {"epoch": epoch, "step": step, "kind": kind, "sha256": sha256}
    if kind == "resume":
        resumes = sorted((e["epoch"], e["step"], n) for n, e in index.items() if e["kind"] == "resume")
        for *_, name in resumes[:-2]:
            (folder / name).unlink(missing_ok=True)
            del index[name]
    write_json_atomic(folder / INDEX, index)
    return path, sha256


def load_checkpoint(path: Path, expected_sha256: str | None = None) -> dict:
    """Load one checkpoint after checking its hash (from the index unless given)."""
    path = Path(path)
    if expected_sha256 is None:
        entry = read_index(path.parent).get(path.name)
        if entry is None:
            raise CheckpointError(f"{path} is not listed in {path.parent / INDEX}")
        expected_sha256 = entry["sha256"]
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} is missing")
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise CheckpointError(f"checkpoint {path} is corrupt: sha256 {actual[:12]}… != recorded {expected_sha256[:12]}…")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from err


def load_latest(folder: Path) -> tuple[dict, Path] | None:
    """The newest resume checkpoint that verifies; corrupt ones are logged and skipped. None if there is none."""
    resumes = [(n, e) for n, e in read_index(folder).items() if e["kind"] == "resume"]
    for name, entry in sorted(resumes, key=lambda kv: (kv[1]["epoch"], kv[1]["step"]), reverse=True):
        try:
            return load_checkpoint(folder / name, entry["sha256"]), folder / name
        except CheckpointError as err:
            log.warning("skipping %s", err)
    return None
