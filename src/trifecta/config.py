"""Training settings: one dataclass with the paper's defaults, parsed from a YAML file and `--set key=value`.

Unknown keys and malformed values are errors that name the key (in the spirit of nanoGPT's configurator).
Defaults follow appendix C of the paper: Adam at 1e-3, 512 positives + 512 negatives per step, SymBa
alpha = 4, FTL tau = 2. Experiment-specific values (epochs, schedules, eval epochs) come from the workflow's
config.yaml.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A setting is unknown or has a value that cannot be used."""


@dataclass
class TrainConfig:
    epochs: int = 100  # training epochs
    eval_epochs: list[int] = field(default_factory=list)  # test-split evaluations (last always added)
    snapshot_epochs: list[int] = field(default_factory=list)  # keep model weights at these epochs (last always added)
    checkpoint_every: int = 10  # resume checkpoint every N epochs (0: only at the end)
    width: float = 1.0  # multiplies every layer's channels / units (1.0 = the paper's network)
    batch_size: int = 512  # positives per step (FF adds as many negatives); samples per step for baselines
    lr_schedule: list[tuple[int, float]] = field(default_factory=lambda: [(0, 1e-3)])  # (first epoch, lr), 0-based
    tau: float = 2.0  # FTL threshold (ignored by SymBa)
    alpha: float = 4.0  # SymBa separation scale (ignored by FTL)
    last_k: int = 3  # evaluation also reports the mean goodness of the last k layers (Table 3)
    eval_batch_size: int = 8192  # image-label pairs per evaluation forward pass
    augment: bool = True  # random crop (4 px padding) + rotation (±15°), appendix C
    subset_train: int = 0  # use a class-stratified subset of this many training images (0 = all)
    subset_test: int = 0  # likewise for the test split (0 = all)
    momentum: float = 0.9  # SGD momentum (PEPITA only)
    dropout: float = 0.1  # dropout probability (PEPITA only)
    pep_hidden: int = 1024  # PEPITA hidden units (before the width multiplier)

    def validate(self) -> "TrainConfig":
        """Check ranges and cross-field rules; returns self with eval_ and snapshot_epochs sorted and completed."""
        _require(self.epochs >= 1, "epochs", self.epochs, "must be >= 1")
        _require(self.width > 0, "width", self.width, "must be > 0")
        _require(self.batch_size >= 2, "batch_size", self.batch_size, "must be >= 2")
        _require(self.eval_batch_size >= 1, "eval_batch_size", self.eval_batch_size, "must be >= 1")
        _require(self.checkpoint_every >= 0, "checkpoint_every", self.checkpoint_every, "must be >= 0")
        _require(self.last_k >= 1, "last_k", self.last_k, "must be >= 1")
        _require(self.alpha > 0, "alpha", self.alpha, "must be > 0")
        _require(0 <= self.dropout < 1, "dropout", self.dropout, "must be in [0, 1)")
        _require(self.pep_hidden >= 1, "pep_hidden", self.pep_hidden, "must be >= 1")
        for name in ("eval_epochs", "snapshot_epochs"):  # each also at the last epoch
            epochs = getattr(self, name)
            for e in epochs:
                _require(1 <= e <= self.epochs, name, epochs, f"each must be in 1..epochs={self.epochs}")
            setattr(self, name, sorted(set(epochs) | {self.epochs}))
        starts = [s for s, _ in self.lr_schedule]
        _require(bool(starts) and starts[0] == 0, "lr_schedule", self.lr_schedule, "must start at epoch 0")
        _require(starts == sorted(set(starts)), "lr_schedule", self.lr_schedule, "epochs must increase")
        _require(all(lr > 0 for _, lr in self.lr_schedule), "lr_schedule", self.lr_schedule, "rates must be > 0")
        return self

    def lr_at(self, epoch: int) -> float:
        """Learning rate for a 0-based epoch under the piecewise-constant schedule."""
        return [lr for start, lr in self.lr_schedule if start <= epoch][-1]

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["lr_schedule"] = [list(p) for p in self.lr_schedule]
        return d


def _require(ok: bool, key: str, value, why: str) -> None:
    if not ok:
        raise ConfigError(f"setting {key}={value!r} {why}")


# ---- Parsing ----

def _parse_int_list(text) -> list[int]:
    if isinstance(text, (list, tuple)):
        return [int(v) for v in text]
    return [int(v) for v in str(text).replace(" ", "").split(",") if v]


def _parse_schedule(text) -> list[tuple[int, float]]:
    """'0:1e-3,150:1e-4' or [[0, 1e-3], [150, 1e-4]] -> [(0, 0.001), (150, 0.0001)]."""
    if isinstance(text, (list, tuple)):
        return [(int(e), float(lr)) for e, lr in text]
    pairs = [p.split(":") for p in str(text).replace(" ", "").split(",") if p]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("expected EPOCH:LR pairs separated by commas, e.g. 0:1e-3,150:1e-4")
    return [(int(e), float(lr)) for e, lr in pairs]


def _parse_bool(text) -> bool:
    if isinstance(text, bool):
        return text
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _parse_int(text) -> int:
    if isinstance(text, bool) or (isinstance(text, float) and not text.is_integer()):
        raise ValueError("expected an integer")
    return int(text)


_PARSERS = {
    int: _parse_int,
    float: float,
    bool: _parse_bool,
    "list[int]": _parse_int_list,
    "list[tuple[int, float]]": _parse_schedule,
}


def parse_value(key: str, raw):
    """Convert `raw` (string from the command line, or a YAML value) to the type of setting `key`."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if key not in fields:
        raise ConfigError(f"unknown setting '{key}'; valid settings: {', '.join(sorted(fields))}")
    kind = fields[key].type
    parser = _PARSERS.get(kind, _PARSERS.get(str(kind)))
    try:
        return parser(raw)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"setting {key}={raw!r} is malformed: {err}") from None


def build_config(config_file: Path | None = None, overrides: list[str] = ()) -> TrainConfig:
    """Defaults, then a YAML file of settings, then `key=value` overrides; validated."""
    values = {}
    if config_file is not None:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: expected a mapping of setting: value")
        values.update({k: parse_value(k, v) for k, v in loaded.items()})
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        values[key.strip()] = parse_value(key.strip(), raw)
    return TrainConfig(**values).validate()


def config_from_dict(values: dict) -> TrainConfig:
    """Rebuild a config stored in a checkpoint or run record."""
    return TrainConfig(**{k: parse_value(k, v) for k, v in values.items()}).validate()
