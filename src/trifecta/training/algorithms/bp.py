"""Backpropagation baseline BP/d (and BP/s): the paper's CNNs trained end to end with cross-entropy.

Each layer is reordered for backprop (§6, footnote 6): 3x3 convolution without bias -> batch norm -> ReLU
-> optional 2x2 max-pool, with the channels and pools of registry.ARCHS scaled by `width`; a linear head
(with bias) maps the flattened last feature map to the class logits. Adam at the `lr_schedule` rate.

BPTrainer is also the frame of the other baselines (fa.py, pepita.py): they swap the network, the optimiser
or the step, and share evaluation by logits, logging, checkpoint state and architecture checks.

References:
    Dooms, Tsang & Oramas (2023), "The Trifecta", §6 and footnote 6 (the BP baseline), appendix C (Adam).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from trifecta.training.models import LayerGradNorms, init_weight
from trifecta.training.registry import get_arch, scaled


def conv_block(n_in: int, n_out: int, pool: bool, init: str) -> nn.Sequential:
    """conv3x3 (no bias) -> batch norm -> ReLU -> optional max-pool: the BP layer order."""
    conv = nn.Conv2d(n_in, n_out, 3, padding=1, bias=False)
    init_weight(conv.weight, init)
    parts = [conv, nn.BatchNorm2d(n_out), nn.ReLU()]
    return nn.Sequential(*parts, nn.MaxPool2d(2)) if pool else nn.Sequential(*parts)


class BPNet(nn.Module):
    """A CNN of registry.ARCHS in the BP layer order, plus a linear classification head."""

    def __init__(self, info, arch: str, width: float, init: str = "pytorch"):
        super().__init__()
        layout = get_arch(arch)
        channels, side, _ = info.shape
        layers, n_in = [], channels
        for i, u in enumerate(layout.units, start=1):
            layers.append(conv_block(n_in, scaled(u, width), i in layout.pools, init))
            n_in, side = scaled(u, width), side // 2 if i in layout.pools else side
        head = nn.Linear(n_in * side * side, info.num_classes)
        if init == "kaiming_relu":
            init_weight(head.weight, init)
            nn.init.zeros_(head.bias)
        self.layers = nn.ModuleList([*layers, head])
        self.channels_last = False

    def forward(self, x):
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)  # the net's own layout (as FFNet)
        for layer in self.layers[:-1]:
            x = layer(x)
        return self.layers[-1](x.flatten(1))


def main_weight(layer: nn.Module) -> torch.Tensor:
    """The convolution or linear weight of a layer."""
    return next(m.weight for m in layer.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


class BPTrainer:
    step_metrics = ("loss", "grad_norm")  # loss: the network's cross-entropy, repeated on every layer's row
    scores_are_goodness = False

    autocast = True  # PEPITA's hand-made updates stay in float32

    def __init__(self, algo: str, info, arch: str, cfg, recipe):
        self.recipe = recipe
        self.net = self.build_net(info, arch, cfg, recipe)
        self.num_layers = len(self.net.layers)
        self.eval_batch_size = cfg.eval_batch_size
        self.optimizer = self.build_optimizer(cfg, recipe)
        self.grad_norms = LayerGradNorms(self.net.layers)

    def build_net(self, info, arch: str, cfg, recipe) -> nn.Module:
        net = BPNet(info, arch, cfg.width, cfg.init).to(recipe.device)
        if recipe.channels_last:
            net.channels_last = True
            net.to(memory_format=torch.channels_last)
        return net

    def build_optimizer(self, cfg, recipe):
        return torch.optim.Adam(self.net.parameters(), lr=cfg.lr_at(0), fused=recipe.fused_adam)

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def logits(self, images):
        return self.net(images)

    def train_step(self, images, labels, iteration: int, generator):
        """One Adam step on the cross-entropy; returns (layers, 2): loss, gradient norm."""
        with self.recipe.autocast_context(self.autocast):
            loss = F.cross_entropy(self.logits(images).float(), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return self.step_rows(loss)

    def step_rows(self, loss) -> torch.Tensor:
        norms = self.grad_norms()
        return torch.stack([loss.detach().float().expand_as(norms), norms], dim=1)

    @torch.no_grad()
    def scores(self, images):
        """Logits of the output layer: (N, classes, 1), float32."""
        with self.recipe.autocast_context(self.autocast):
            out = [self.logits(part).float() for part in images.split(self.eval_batch_size)]
        return torch.cat(out)[:, :, None]

    def max_abs_weights(self):
        return torch.stack([self.layer_weight(i).abs().max().float() for i in range(self.num_layers)])

    def layer_weight(self, i: int):
        return main_weight(self.net.layers[i]).detach()

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
