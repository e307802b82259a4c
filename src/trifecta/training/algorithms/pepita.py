"""PEPITA baseline PEP/t: two forward passes per batch and no backward pass (Dellaferrera & Kreiman 2022).

The network is the source's: one hidden layer of `pep_hidden` (x `width`) ReLUs and a linear output, both
without bias, He-uniform weights. Per batch (Algorithm 1 of the PEPITA paper, with inverted dropout whose
mask is shared by both passes):

    standard pass    h = relu(W1 x) * mask,          e = softmax(W2 h) - onehot(y)
    modulated pass   x' = x + F e,  h' = relu(W1 x') * mask
    updates          dW1 = (h - h') x'^T / N,        dW2 = e h'^T / N

F (inputs x classes) is drawn once uniformly in ±0.05 sqrt(6 / inputs) and kept fixed (a buffer, so it is
checkpointed). The updates are set as .grad of torch.optim.SGD with momentum `momentum`, so the lr schedule
applies as in any run. x is on the source's pixel scale [0, 1] (the pipeline's standardisation is undone),
for which its rates and F were chosen. Everything stays in float32, also on CUDA.

References:
    Dellaferrera & Kreiman (2022), "Error-driven Input Modulation: Solving the Credit Assignment Problem
    without a Backward Pass", ICML, Algorithm 1; GiorgiaD/PEPITA,
    Tutorial_PEPITA_FullyConnectedNets_CIFAR-10.ipynb (the setup and the 52.6% CIFAR-10 figure).
    Dooms, Tsang & Oramas (2023), "The Trifecta", §6 (PEP/t in Table 2).
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from trifecta.training import data
from trifecta.training.algorithms.bp import BPTrainer
from trifecta.training.models import init_weight
from trifecta.training.registry import scaled

PROJECTION_SCALE = 0.05  # F's range relative to the He-uniform bound of the first layer (source notebook)


class PEPNet(nn.Module):
    """Flattened image -> linear (no bias) -> ReLU -> [dropout mask] -> linear (no bias) logits."""

    def __init__(self, info, hidden: int, init: str = "kaiming_relu"):
        super().__init__()
        n_in = info.shape[0] * info.shape[1] * info.shape[2]
        self.layers = nn.ModuleList([nn.Linear(n_in, hidden, bias=False),
                                     nn.Linear(hidden, info.num_classes, bias=False)])
        for layer in self.layers:
            init_weight(layer.weight, init)  # kaiming_relu = U(±sqrt(6 / fan_in)), the source's (PEPITA's default)
        bound = PROJECTION_SCALE * math.sqrt(6 / n_in)
        self.register_buffer("projection", torch.empty(n_in, info.num_classes).uniform_(-bound, bound))

    def hidden(self, x, mask=None):
        h = F.relu(self.layers[0](x))
        return h if mask is None else h * mask

    def forward(self, x, mask=None):
        return self.layers[1](self.hidden(x.flatten(1), mask))


class PEPITATrainer(BPTrainer):
    autocast = False  # hand-made updates: float32 throughout, whatever the recipe

    def __init__(self, algo: str, info, arch: str, cfg, recipe):
        super().__init__(algo, info, arch, cfg, recipe)
        self.dropout = cfg.dropout
        self.mean, self.std = data.channel_stats(info, recipe.device, torch.float32)

    def logits(self, images):
        return self.net(self.pixels(images))

    def pixels(self, images):
        """Undo the pipeline's standardisation: the source's rates and F are set for pixels in [0, 1]."""
        return (images.float() * self.std + self.mean).flatten(1)

    def build_net(self, info, arch: str, cfg, recipe) -> nn.Module:
        return PEPNet(info, scaled(cfg.pep_hidden, cfg.width), cfg.init).to(recipe.device)

    def build_optimizer(self, cfg, recipe):
        return torch.optim.SGD(self.net.parameters(), lr=cfg.lr_at(0), momentum=cfg.momentum)

    def dropout_mask(self, n: int, generator):
        """Inverted dropout on the hidden units, one mask for both passes."""
        size = (n, self.net.layers[0].out_features)
        keep = torch.rand(size, generator=generator, device=generator.device) >= self.dropout
        return keep.float() / (1 - self.dropout)

    @torch.no_grad()
    def updates(self, x, labels, mask):
        """PEPITA's (dW1, dW2) for a batch of flattened images, and the standard pass's logits."""
        w1, w2 = self.net.layers
        h = self.net.hidden(x, mask)
        logits = w2(h)
        error = logits.softmax(1) - F.one_hot(labels, logits.shape[1]).float()
        x_mod = x + error @ self.net.projection.T
        h_mod = self.net.hidden(x_mod, mask)
        return ((h - h_mod).T @ x_mod / len(x), error.T @ h_mod / len(x)), logits

    def train_step(self, images, labels, iteration: int, generator):
        """One PEPITA update; returns (2, 2): the standard pass's cross-entropy, the update's norm."""
        x = self.pixels(images)
        (d1, d2), logits = self.updates(x, labels, self.dropout_mask(len(x), generator))
        self.optimizer.zero_grad(set_to_none=True)
        for layer, delta in zip(self.net.layers, (d1, d2)):
            layer.weight.grad = delta
        self.optimizer.step()
        return self.step_rows(F.cross_entropy(logits, labels))
