"""Trainers by algorithm name: Forward-Forward variants (composed as LOSS-NORM[-olu]) and the baselines.

The names themselves, presets (vff, tff) and which architectures each baseline supports live in
trifecta.registry. Every trainer offers: num_layers, step_metrics, net, train_step(images, labels,
iteration, generator), scores(images) -> (N, classes, layers), scores_are_goodness, max_abs_weights(),
set_lr(lr), state_dict() / load_state_dict().
"""

from trifecta.training.algorithms.bp import BPTrainer
from trifecta.training.algorithms.fa import FATrainer
from trifecta.training.algorithms.ff import FFTrainer
from trifecta.training.algorithms.pepita import PEPITATrainer
from trifecta.training.recipe import Recipe
from trifecta.training.registry import BASELINES, check_combination, parse_ff_name

TRAINERS = {"bp": BPTrainer, "fa": FATrainer, "pep": PEPITATrainer}  # baseline name -> trainer class
assert set(TRAINERS) == set(BASELINES), "every baseline of the registry needs its trainer"


def build_trainer(name: str, info, arch: str, cfg, device):
    """The trainer of algorithm `name` on `device`, under the recipe of the `precision` setting."""
    check_combination(name, arch)
    recipe = Recipe.for_run(device, cfg.precision)
    if name in TRAINERS:
        return TRAINERS[name](info, arch, cfg, recipe)
    return FFTrainer(parse_ff_name(name), info, arch, cfg, recipe)
