"""Training settings, each declared once in Settings (name, type, default, rules, help text, whether a run's
identity holds it), parsed from a YAML file and `--set key=value`.

Unknown keys and malformed values are errors that name the key (in the spirit of nanoGPT's configurator).
Defaults follow appendix C of the paper: Adam at 1e-3, 512 positives + 512 negatives per step, SymBa
alpha = 4, FTL tau = 2; where the paper is silent, the authors' released code. A baseline's source may
differ (registry.algorithm_defaults: e.g. PEPITA's batch size and rates); explicit settings always win.
Experiment-specific values (epochs, schedules, eval epochs) come from the workflow's config.yaml. `trifecta train
--help` and the settings table of docs/configuration.md are rendered from the declaration (planning/settings_help.py);
the workflow's schema leaves the settings to this module. A help text is display text: no code identity counts
it (identity/codehash.py), so rewording one reruns nothing.

Importable without torch: the workflow validates every grid entry with it while planning.
"""

import dataclasses
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from trifecta.training.registry import algorithm_defaults


class SettingsError(ValueError):
    """A setting is unknown or has a value that cannot be used; names the key, the value and why."""

    def __init__(self, message: str, key: str | None = None, value=None, why: str | None = None):
        super().__init__(message)
        self.key, self.value, self.why = key, value, why


def _setting(default, help: str, identity: bool = True, **rules):
    """A setting, declared once: its default, its help text (display text, which no code identity counts:
    identity/codehash.py), whether a run's identity holds it, and its rules (minimum, exclusive_minimum,
    exclusive_maximum, choices), which validate() checks; planning/settings_help.py renders `--help` and the docs."""
    metadata = {"help": help, "identity": identity, "rules": rules}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Settings:
    epochs: int = _setting(100, minimum=1, help="training epochs")
    eval_epochs: list[int] = _setting([], help="test accuracy at these epochs (the last is always added)")
    snapshot_epochs: list[int] = _setting(
        [], help="keep the model's weights at these epochs (the last is always added)")
    checkpoint_every: int = _setting(
        10, minimum=0, identity=False,
        help="resume checkpoint every N epochs (0: only at the end); not part of a run's identity")
    width: float = _setting(
        1.0, exclusive_minimum=0, help="multiplies every layer's channels or units (1.0 = the paper's network)")
    batch_size: int = _setting(
        512, minimum=2, help="positives per step (FF adds as many negatives); samples per step for baselines")
    lr_schedule: list[tuple[int, float]] = _setting(
        [(0, 1e-3)], help="piecewise constant learning rate, EPOCH:LR pairs from epoch 0 (0-based), e.g. "
                          "0:1e-3,150:1e-4")
    tau: float = _setting(2.0, help="FTL threshold (for algorithms named ftl-..., not ftlN-...)")
    alpha: float = _setting(4.0, exclusive_minimum=0, help="SymBa separation scale")
    init: str = _setting(
        "pytorch", choices=("pytorch", "kaiming_relu"),
        help="initial weights: pytorch (PyTorch's default, as the released code) or kaiming_relu (uniform Kaiming "
             "with ReLU gain)")
    layer_norm: str = _setting(
        "rms", choices=("rms", "pytorch"),
        help="form of FF layer norm (NORM ln): rms (divide by the root mean square, footnote 2) or pytorch "
             "(nn.LayerNorm, as the released code)")
    label_matrix: str = _setting(
        "auto", choices=("auto", "learned", "fixed"),
        help="FF label plane: auto (learned with OLU, fixed random without, §5.1), learned (as the released code), "
             "or fixed")
    precision: str = _setting(  # out of the identity's settings: the identity holds it resolved, as `recipe`
        "auto", choices=("auto", "bf16", "fp16", "fp32"), identity=False,
        help="numeric recipe: auto (bf16 on CUDA, fp32 on a CPU), bf16 (bfloat16 autocast, channels-last, fused "
             "Adam, on any device), fp16 (the same with float16, as the released code), fp32; a run's identity "
             "holds it resolved on its device (`recipe`)")
    last_k: int = _setting(3, minimum=1, help="also classify by the mean goodness of the last k layers (Table 3)")
    eval_batch_size: int = _setting(
        8192, minimum=1, identity=False,
        help="image-label pairs per evaluation forward pass (speed only; not part of a run's identity)")
    augment: bool = _setting(True, help="random crop (4 px padding) + rotation (±15°), appendix C")
    subset_train: int = _setting(0, minimum=0, help="class-stratified subset of the training images (0 = all)")
    subset_test: int = _setting(0, minimum=0, help="class-stratified subset of the test images (0 = all)")
    momentum: float = _setting(0.9, minimum=0, help="SGD momentum (PEPITA only)")
    dropout: float = _setting(0.1, minimum=0, exclusive_maximum=1, help="dropout probability (PEPITA only)")
    pep_hidden: int = _setting(1024, minimum=1, help="PEPITA hidden units (before the width multiplier)")

    def validate(self) -> "Settings":
        """Check each setting's rules and the cross-field ones; returns self with eval_ and snapshot_epochs sorted
        and completed."""
        for f in dataclasses.fields(self):
            value, rules = getattr(self, f.name), f.metadata["rules"]
            if "choices" in rules:
                _require(value in rules["choices"], f.name, value, f"must be one of {', '.join(rules['choices'])}")
            low, high = rules.get("minimum", rules.get("exclusive_minimum")), rules.get("exclusive_maximum")
            if high is not None:
                _require(low <= value < high, f.name, value, f"must be in [{low}, {high})")
            elif "minimum" in rules:
                _require(value >= low, f.name, value, f"must be >= {low}")
            elif "exclusive_minimum" in rules:
                _require(value > low, f.name, value, f"must be > {low}")
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
        """The settings that determine a run's results, as its identity and run.json hold them: all but those
        declared `identity=False` (NOT_IDENTITY): those that change only speed or safety, and `precision`, whose
        resolution is the identity's recipe."""
        return {k: v for k, v in self.to_dict().items() if k not in NOT_IDENTITY}

    def continues(self, shorter: "Settings") -> bool:
        """Whether a run of these settings goes through a finished run of `shorter` on its way: only more epochs,
        the same learning rates up to its end, and no evaluation or snapshot up to its end that it did not make."""
        end = shorter.epochs
        same = {k: v for k, v in self.identity_dict().items() if k not in CONTINUABLE}
        return (self.epochs > end and same == {k: v for k, v in shorter.identity_dict().items() if k not in CONTINUABLE}
                and all(self.lr_at(e) == shorter.lr_at(e) for e in range(end))
                and all(set(e for e in getattr(self, name) if e <= end) <= set(getattr(shorter, name))
                        for name in ("eval_epochs", "snapshot_epochs")))


NOT_IDENTITY = tuple(f.name for f in dataclasses.fields(Settings) if not f.metadata["identity"])
CONTINUABLE = ("epochs", "eval_epochs", "snapshot_epochs", "lr_schedule")  # what continues() compares itself


def resolved_recipe(precision: str, device_type: str) -> dict:
    """The numeric recipe a run computes with, as its identity holds it: `precision` on the device type, `auto`
    being bf16 on CUDA and fp32 elsewhere (so auto on a GPU is the same run as bf16 there)."""
    if precision == "auto":
        precision = "bf16" if device_type == "cuda" else "fp32"
    return {"device": device_type, "precision": precision}


def _require(ok: bool, key: str, value, why: str) -> None:
    if not ok:
        raise SettingsError(f"setting {key}={value!r} {why}", key, value, why)


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
FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def parse_value(key: str, raw):
    """Convert `raw` (string from the command line, or a YAML value) to the type of setting `key`."""
    if key not in FIELDS:
        why = f"no such setting; valid settings: {', '.join(sorted(FIELDS))}"
        raise SettingsError(f"unknown setting '{key}'; valid settings: {', '.join(sorted(FIELDS))}", key, raw, why)
    kind = FIELDS[key].type
    parser = _PARSERS.get(kind, _PARSERS.get(str(kind)))
    try:
        return parser(raw)
    except (TypeError, ValueError) as err:
        raise SettingsError(f"setting {key}={raw!r} is malformed: {err}", key, raw, f"is malformed: {err}") from None


def format_value(value) -> str:
    """A setting's value as `--set key=VALUE` takes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(":".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v) for v in value)
    return str(value)


def render_settings(settings: dict) -> str:
    """`--set key=value` arguments, sorted so that the rule's params (and with them reruns) are stable."""
    return " ".join(f"--set {shlex.quote(f'{k}={format_value(v)}')}" for k, v in sorted(settings.items()))


def parse_overrides(overrides) -> dict:
    """`key=value` strings -> {key: raw value}."""
    values = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SettingsError(f"--set expects key=value, got {item!r}")
        values[key.strip()] = raw
    return values


def resolve_settings(settings: dict, algo: str | None = None, dataset: str | None = None) -> Settings:
    """Defaults, then the algorithm's (registry.algorithm_defaults), then `settings` ({key: raw value}); validated."""
    values = {k: parse_value(k, v) for k, v in algorithm_defaults(algo, dataset).items()} if algo else {}
    values.update({k: parse_value(k, v) for k, v in settings.items()})
    return Settings(**values).validate()


def build_settings(settings_file: Path | None = None, overrides=(), algo: str | None = None,
                 dataset: str | None = None) -> Settings:
    """Defaults, the algorithm's defaults, a YAML file of settings, then `key=value` overrides; validated."""
    settings = {}
    if settings_file is not None:
        try:
            loaded = yaml.safe_load(Path(settings_file).read_text()) or {}
        except yaml.YAMLError as err:
            raise SettingsError(yaml_problem(settings_file, err)) from None
        if not isinstance(loaded, dict):
            raise SettingsError(f"{settings_file}: expected a mapping of setting: value")
        settings.update(loaded)
    settings.update(parse_overrides(overrides))
    return resolve_settings(settings, algo, dataset)


def yaml_problem(path, err) -> str:
    """A YAML syntax error as `FILE, line N, column M: what`."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    return f"{where}: not valid YAML: {getattr(err, 'problem', None) or err}"


def settings_from_dict(values: dict) -> Settings:
    """Rebuild a config stored in a checkpoint or run record."""
    return Settings(**{k: parse_value(k, v) for k, v in values.items()}).validate()
