"""The run store: one folder per run identity (STORE/<identity hash>/: checkpoints, snapshots, logs, run.json,
metrics.json), shared by every run directory that shows one of them. No torch.

    finished(store)                    every identity whose run completed: {folder: its identity}
    continuable(store, identity, cfg)  the finished identity a longer run of `identity` goes on from, or None
"""

from pathlib import Path

from trifecta.training.config import TrainConfig, config_from_dict
from trifecta.training.rundir import INDEX, SUMMARY, read_json

SAME_RUN = ("dataset", "arch", "algo", "seed", "recipe", "training_code", "data")  # a continued run shares these


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


def continuable(store: Path, identity: dict, cfg: TrainConfig) -> Path | None:
    """The store folder of the longest finished run that a run of `identity` (settings `cfg`) continues: the same
    run, recipe, code and data, settings that differ only as TrainConfig.continues allows, and its final resume
    checkpoint kept. None if there is none."""
    best, best_epochs = None, 0
    for folder, earlier in finished(store).items():
        if any(earlier.get(key) != identity[key] for key in SAME_RUN):
            continue
        try:
            shorter = config_from_dict(earlier["config"])
        except (ValueError, TypeError):
            continue
        final = (shorter.epochs, 0)
        index = read_json(folder / INDEX) if (folder / INDEX).exists() else {}
        kept = any(e["kind"] == "resume" and (e["epoch"], e["step"]) == final for e in index.values())
        if kept and cfg.continues(shorter) and shorter.epochs > best_epochs:
            best, best_epochs = folder, shorter.epochs
    return best
