"""Algorithms by name: Forward-Forward variants composed as LOSS-NORM[-olu], presets and baselines.

FF names: LOSS is `ftl` (threshold loss, tau from the `tau` setting), `ftlN` (tau = N, e.g. ftl10) or
`symba` (alpha from the `alpha` setting); NORM is `ln` (length norm), `bn` (batch norm) or `none`; a trailing
`-olu` turns on overlapping local updates. Presets: `vff` = ftl2-ln (Hinton 2022), `tff` = symba-bn-olu.
Baselines: see BASELINES.

Every trainer offers: num_layers, step_metrics, net, train_step(images, labels, iteration, generator),
scores(images) -> (N, classes, layers), scores_are_goodness, max_abs_weights(), set_lr(lr),
state_dict() / load_state_dict().
"""

import re
from dataclasses import dataclass

from trifecta.algorithms.bp import BPTrainer
from trifecta.algorithms.fa import FATrainer
from trifecta.algorithms.ff import FFTrainer
from trifecta.algorithms.pepita import PEPITATrainer

PRESETS = {"vff": "ftl2-ln", "tff": "symba-bn-olu"}
BASELINES = {"bp": BPTrainer, "fa": FATrainer, "pep": PEPITATrainer}  # name -> trainer class (info, arch, cfg, device)
_FF_NAME = re.compile(r"^(?P<loss>symba|ftl(?P<tau>\d+(\.\d+)?)?)-(?P<norm>ln|bn|none)(?P<olu>-olu)?$")


@dataclass(frozen=True)
class FFSpec:
    loss: str  # "ftl" or "symba"
    tau: float | None  # fixed by the name (ftl10), else taken from the `tau` setting
    norm: str  # "ln", "bn" or "none"
    olu: bool  # overlapping local updates


def parse_ff_name(name: str) -> FFSpec | None:
    match = _FF_NAME.match(PRESETS.get(name, name))
    if match is None:
        return None
    tau = match["tau"]
    return FFSpec("symba" if match["loss"] == "symba" else "ftl", float(tau) if tau else None,
                  match["norm"], bool(match["olu"]))


def check_algorithm(name: str) -> None:
    """Raise ValueError naming the problem if `name` is not an algorithm."""
    if name not in BASELINES and parse_ff_name(name) is None:
        raise ValueError(
            f"unknown algorithm '{name}'; use a preset ({', '.join(PRESETS)}), a baseline "
            f"({', '.join(BASELINES) or 'none'}), or an FF name LOSS-NORM[-olu] with LOSS in "
            "ftl, ftlN, symba and NORM in ln, bn, none (e.g. symba-bn-olu, ftl10-ln)")


def build_trainer(name: str, info, arch: str, cfg, device):
    check_algorithm(name)
    if name in BASELINES:
        return BASELINES[name](info, arch, cfg, device)
    return FFTrainer(parse_ff_name(name), info, arch, cfg, device)
