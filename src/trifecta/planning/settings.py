"""What each training setting means and `trifecta train --help`'s list of settings: the display side of
training/config.py (whose TrainConfig holds each setting's type, default and rules); the durations `trifecta
status` shows. No torch. No rule's command imports this module: editing a help text reruns nothing.
"""

import dataclasses

from trifecta.training.config import FIELDS, format_value
from trifecta.training.registry import BASELINES

HELP = {
    "epochs": "training epochs",
    "eval_epochs": "test accuracy at these epochs (the last is always added)",
    "snapshot_epochs": "keep the model's weights at these epochs (the last is always added)",
    "checkpoint_every": "resume checkpoint every N epochs (0: only at the end); not part of a run's identity",
    "width": "multiplies every layer's channels or units (1.0 = the paper's network)",
    "batch_size": "positives per step (FF adds as many negatives); samples per step for baselines",
    "lr_schedule": "piecewise constant learning rate, EPOCH:LR pairs from epoch 0 (0-based), e.g. 0:1e-3,150:1e-4",
    "tau": "FTL threshold (for algorithms named ftl-..., not ftlN-...)",
    "alpha": "SymBa separation scale",
    "init": "initial weights: pytorch (PyTorch's default, as the released code) or kaiming_relu (uniform Kaiming "
            "with ReLU gain)",
    "layer_norm": "form of FF layer norm (NORM ln): rms (divide by the root mean square, footnote 2) or pytorch "
                  "(nn.LayerNorm, as the released code)",
    "label_matrix": "FF label plane: auto (learned with OLU, fixed random without, §5.1), learned (as the released "
                    "code), or fixed",
    "precision": "numeric recipe: auto (bf16 on CUDA, fp32 on a CPU), bf16 (bfloat16 autocast, channels-last, fused "
                 "Adam, on any device), fp16 (the same with float16, as the released code), fp32; a run's identity "
                 "holds it resolved on its device (`recipe`)",
    "last_k": "also classify by the mean goodness of the last k layers (Table 3)",
    "eval_batch_size": "image-label pairs per evaluation forward pass (speed only; not part of a run's identity)",
    "augment": "random crop (4 px padding) + rotation (±15°), appendix C",
    "subset_train": "class-stratified subset of the training images (0 = all)",
    "subset_test": "class-stratified subset of the test images (0 = all)",
    "momentum": "SGD momentum (PEPITA only)",
    "dropout": "dropout probability (PEPITA only)",
    "pep_hidden": "PEPITA hidden units (before the width multiplier)",
}
assert set(HELP) == set(FIELDS), "every setting of TrainConfig needs its help (and no other)"


def default_of(name: str):
    f = FIELDS[name]
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def describe_settings() -> list[tuple[str, str, str]]:
    """(key, default as written on the command line, meaning) of every setting."""
    return [(name, format_value(default_of(name)), HELP[name]) for name in FIELDS]


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


def format_duration(seconds: float | None) -> str:
    """12m05s under an hour, 3h02m above; "—" for None (progress lines, `trifecta status`)."""
    if seconds is None:
        return "—"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"
