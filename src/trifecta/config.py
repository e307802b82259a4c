"""Training settings: one dataclass with the paper's defaults, parsed from a YAML file and `--set key=value`.

Unknown keys and malformed values are errors that name the key (in the spirit of nanoGPT's configurator).
Defaults follow appendix C of the paper: Adam at 1e-3, 512 positives + 512 negatives per step, SymBa
alpha = 4, FTL tau = 2; where the paper is silent, the authors' released code. A baseline's source may
differ (registry.algorithm_defaults: e.g. PEPITA's batch size and rates); explicit settings always win.
Experiment-specific values (epochs, schedules, eval epochs) come from the workflow's config.yaml.

Importable without torch: the workflow validates every grid entry with it while planning.
"""

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trifecta.registry import BASELINES, algorithm_defaults


class ConfigError(ValueError):
    """A setting is unknown or has a value that cannot be used; names the key, the value and why."""

    def __init__(self, message: str, key: str | None = None, value=None, why: str | None = None):
        super().__init__(message)
        self.key, self.value, self.why = key, value, why


def _setting(default, help: str, **kw):
    """A dataclass field with its help text (shown by `trifecta train --help` and in the README)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **kw})
    return field(default=default, metadata={"help": help, **kw})


@dataclass
class TrainConfig:
    epochs: int = _setting(100, "training epochs")
    eval_epochs: list[int] = _setting([], "test accuracy at these epochs (the last is always added)")
    snapshot_epochs: list[int] = _setting([], "keep the model's weights at these epochs (the last is always added)")
    checkpoint_every: int = _setting(10, "resume checkpoint every N epochs (0: only at the end)")
    width: float = _setting(1.0, "multiplies every layer's channels or units (1.0 = the paper's network)")
    batch_size: int = _setting(512, "positives per step (FF adds as many negatives); samples per step for baselines")
    lr_schedule: list[tuple[int, float]] = _setting(
        [(0, 1e-3)], "piecewise constant learning rate, EPOCH:LR pairs from epoch 0 (0-based), e.g. 0:1e-3,150:1e-4")
    tau: float = _setting(2.0, "FTL threshold (for algorithms named ftl-..., not ftlN-...)")
    alpha: float = _setting(4.0, "SymBa separation scale")
    init: str = _setting("pytorch", "initial weights: pytorch (PyTorch's default, as the released code) or "
                                    "kaiming_relu (uniform Kaiming with ReLU gain)",
                         choices=("pytorch", "kaiming_relu"))
    layer_norm: str = _setting("rms", "form of FF layer norm (NORM ln): rms (divide by the root mean square, "
                                      "footnote 2) or pytorch (nn.LayerNorm, as the released code)",
                               choices=("rms", "pytorch"))
    label_matrix: str = _setting("auto", "FF label plane: auto (learned with OLU, fixed random without, §5.1), "
                                         "learned (as the released code), or fixed",
                                 choices=("auto", "learned", "fixed"))
    precision: str = _setting("auto", "numeric recipe: auto (bf16 on CUDA, fp32 on a CPU), bf16 (bfloat16 autocast, "
                                      "channels-last, fused Adam, on any device), fp16 (the same with float16, as the "
                                      "released code), fp32", choices=("auto", "bf16", "fp16", "fp32"))
    last_k: int = _setting(3, "also classify by the mean goodness of the last k layers (Table 3)")
    eval_batch_size: int = _setting(8192, "image-label pairs per evaluation forward pass (speed only)")
    augment: bool = _setting(True, "random crop (4 px padding) + rotation (±15°), appendix C")
    subset_train: int = _setting(0, "class-stratified subset of the training images (0 = all)")
    subset_test: int = _setting(0, "class-stratified subset of the test images (0 = all)")
    momentum: float = _setting(0.9, "SGD momentum (PEPITA only)")
    dropout: float = _setting(0.1, "dropout probability (PEPITA only)")
    pep_hidden: int = _setting(1024, "PEPITA hidden units (before the width multiplier)")

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
        _require(self.subset_train >= 0 and self.subset_test >= 0, "subset_train/subset_test",
                 (self.subset_train, self.subset_test), "must be >= 0")
        for f in dataclasses.fields(self):
            choices = f.metadata.get("choices")
            if choices:
                _require(getattr(self, f.name) in choices, f.name, getattr(self, f.name),
                         f"must be one of {', '.join(choices)}")
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

    def identity_dict(self) -> dict:
        """The settings that determine a run's results, as its identity and run.json hold them (all but
        eval_batch_size, which changes only the speed)."""
        return {k: v for k, v in self.to_dict().items() if k != "eval_batch_size"}


def _require(ok: bool, key: str, value, why: str) -> None:
    if not ok:
        raise ConfigError(f"setting {key}={value!r} {why}", key, value, why)


# ---- Parsing ----

def _parse_int_list(text) -> list[int]:
    if isinstance(text, (list, tuple)):
        return [_parse_int(v) for v in text]
    return [int(v) for v in str(text).replace(" ", "").split(",") if v]


def _parse_schedule(text) -> list[tuple[int, float]]:
    """'0:1e-3,150:1e-4' or [[0, 1e-3], [150, 1e-4]] -> [(0, 0.001), (150, 0.0001)]."""
    if isinstance(text, (list, tuple)):
        return [(_parse_int(e), _parse_float(lr)) for e, lr in text]
    pairs = [p.split(":") for p in str(text).replace(" ", "").split(",") if p]
    if any(len(p) != 2 for p in pairs):
        raise ValueError("expected EPOCH:LR pairs separated by commas, e.g. 0:1e-3,150:1e-4")
    return [(int(e), _parse_float(lr)) for e, lr in pairs]


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


def _parse_float(text) -> float:
    if isinstance(text, bool):
        raise ValueError("expected a number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


_PARSERS = {
    int: _parse_int,
    float: _parse_float,
    bool: _parse_bool,
    str: lambda text: str(text).strip(),
    "list[int]": _parse_int_list,
    "list[tuple[int, float]]": _parse_schedule,
}
FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def parse_value(key: str, raw):
    """Convert `raw` (string from the command line, or a YAML value) to the type of setting `key`."""
    if key not in FIELDS:
        why = f"is not a setting; valid settings: {', '.join(sorted(FIELDS))}"
        raise ConfigError(f"unknown setting '{key}'; valid settings: {', '.join(sorted(FIELDS))}", key, raw, why)
    kind = FIELDS[key].type
    parser = _PARSERS.get(kind, _PARSERS.get(str(kind)))
    try:
        return parser(raw)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"setting {key}={raw!r} is malformed: {err}", key, raw, f"is malformed: {err}") from None


def parse_overrides(overrides) -> dict:
    """`key=value` strings -> {key: raw value}."""
    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        values[key.strip()] = raw
    return values


def settings_config(settings: dict, algo: str | None = None, dataset: str | None = None) -> TrainConfig:
    """Defaults, then the algorithm's (registry.algorithm_defaults), then `settings` ({key: raw value}); validated."""
    values = {k: parse_value(k, v) for k, v in algorithm_defaults(algo, dataset).items()} if algo else {}
    values.update({k: parse_value(k, v) for k, v in settings.items()})
    return TrainConfig(**values).validate()


def build_config(config_file: Path | None = None, overrides=(), algo: str | None = None,
                 dataset: str | None = None) -> TrainConfig:
    """Defaults, the algorithm's defaults, a YAML file of settings, then `key=value` overrides; validated."""
    settings = {}
    if config_file is not None:
        try:
            loaded = yaml.safe_load(Path(config_file).read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(yaml_problem(config_file, err)) from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{config_file}: expected a mapping of setting: value")
        settings.update(loaded)
    settings.update(parse_overrides(overrides))
    return settings_config(settings, algo, dataset)


def yaml_problem(path, err) -> str:
    """A YAML syntax error as `FILE, line N, column M: what`."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {getattr(err, 'problem', None) or err}"


def config_from_dict(values: dict) -> TrainConfig:
    """Rebuild a config stored in a checkpoint or run record."""
    return TrainConfig(**{k: parse_value(k, v) for k, v in values.items()}).validate()


def describe_settings() -> list[tuple[str, str, str]]:
    """(key, default as written on the command line, meaning) of every setting."""
    rows = []
    for name, f in FIELDS.items():
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        rows.append((name, format_value(default), f.metadata["help"]))
    return rows


def format_duration(seconds: float | None) -> str:
    """12m05s under an hour, 3h02m above; "—" for None (progress lines, `trifecta status`)."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def format_value(value) -> str:
    """A setting's value as `--set key=VALUE` takes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(":".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for v in value)
    return str(value)


def settings_help() -> str:
    """Every setting with its default and meaning, then the baselines' own defaults (for `--help`)."""
    rows = describe_settings()
    width = max(len(f"{k}={v or None}") for k, v, _ in rows)
    lines = ["settings (--set KEY=VALUE; default shown):"]
    lines += [f"  {f'{k}={v or None}':<{width}}  {meaning}" for k, v, meaning in rows]
    lines.append("a baseline's source sets other defaults (a --set still wins):")
    for name, baseline in BASELINES.items():
        if baseline.defaults:
            values = " ".join(f"{k}={format_value(v)}" for k, v in baseline.defaults.items())
            per_dataset = "; ".join(f"{d}: " + " ".join(f"{k}={format_value(v)}" for k, v in over.items())
                                    for d, over in baseline.dataset_defaults.items())
            lines.append(f"  {name}: {values}" + (f" ({per_dataset})" if per_dataset else ""))
    return "\n".join(lines)
