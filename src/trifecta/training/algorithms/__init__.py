"""Trainers by algorithm family: Forward-Forward variants (composed as LOSS-NORM[-olu]) and the baselines.

The names themselves, presets (vff, tff) and which architectures each baseline supports live in
training/registry.py. Every trainer is made as TRAINERS[family](algo, info, arch, cfg, recipe) and offers:
num_layers, step_metrics, net, train_step(images, labels, iteration, generator), scores(images) -> (N, classes,
layers), scores_are_goodness, max_abs_weights(), set_lr(lr), state_dict() / load_state_dict().
"""

from trifecta.training.algorithms.bp import BPTrainer
from trifecta.training.algorithms.fa import FATrainer
from trifecta.training.algorithms.ff import FFTrainer
from trifecta.training.algorithms.pepita import PEPITATrainer
from trifecta.training.recipe import Recipe
from trifecta.training.registry import BASELINES, FF, Keyed, check_combination, family

TRAINERS = Keyed("family", {"ff": FFTrainer, "bp": BPTrainer, "fa": FATrainer, "pep": PEPITATrainer})
assert set(TRAINERS) == {FF, *BASELINES}, "every baseline of the registry needs its trainer"


def build_trainer(name: str, info, arch: str, cfg, device):
    """The trainer of algorithm `name` on `device`, under the recipe of the `precision` setting."""
    check_combination(name, arch)
    return TRAINERS[family(name)](name, info, arch, cfg, Recipe.for_run(device, cfg.precision))
