"""Feedback alignment baseline FA/f (and FA/t): a fully connected ReLU network whose backward pass carries
the error through fixed random feedback matrices B instead of the transposed forward weights W^T.

Each linear map y = x W^T sends the error back as dx = dy B (B has W's shape and distribution, drawn once
and never trained) while its own weight gradient stays dW = dy^T x. The layers are those of registry.ARCHS
("f": six 2048-unit layers, "t": four of 2000) scaled by `width`, each batch norm -> linear (no bias) ->
ReLU as in the paper's FCN, then batch norm -> linear head. The batch norm is needed: without it, FA with
Adam at 1e-3 lets the activations grow and the loss rise (docs/reproduction.md). Cross-entropy, Adam at
the `lr_schedule` rate. With B = W the gradients are exactly backprop's.

References:
    Lillicrap, Cownden, Tweed & Akerman (2016), "Random synaptic feedback weights support error
    backpropagation for deep learning", Nature Communications 7, 13276.
    Dooms, Tsang & Oramas (2023), "The Trifecta", §6 (FA/f in Table 2).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from trifecta.training.algorithms.bp import BPTrainer
from trifecta.training.models import init_weight
from trifecta.training.registry import get_arch, scaled


class FeedbackAlignment(torch.autograd.Function):
    """x W^T forward; backward sends dy B to the input and dy^T x to the weight."""

    @staticmethod
    def forward(ctx, x, weight, feedback):
        ctx.save_for_backward(x, feedback)
        ctx.weight_dtype = weight.dtype
        return F.linear(x, weight)

    @staticmethod
    def backward(ctx, grad_out):
        x, feedback = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad_out @ feedback.to(grad_out.dtype)).to(x.dtype)
        if ctx.needs_input_grad[1]:
            grad_w = (grad_out.flatten(0, -2).T @ x.flatten(0, -2).to(grad_out.dtype)).to(ctx.weight_dtype)
        return grad_x, grad_w, None


class FALinear(nn.Linear):
    """A bias-free linear layer trained by feedback alignment; B is a buffer, so it is checkpointed."""

    def __init__(self, n_in: int, n_out: int, init: str = "pytorch"):
        super().__init__(n_in, n_out, bias=False)
        init_weight(self.weight, init)
        feedback = nn.init.kaiming_uniform_(torch.empty_like(self.weight), nonlinearity="relu")  # any init
        self.register_buffer("feedback", feedback)

    def forward(self, x):
        return FeedbackAlignment.apply(x, self.weight, self.feedback)


def fa_layer(n_in: int, n_out: int, relu: bool, init: str) -> nn.Sequential:
    """batch norm -> FA linear (no bias) -> ReLU: the FCN's layer order (§5.2) with FA in place of FF."""
    parts = [nn.BatchNorm1d(n_in), FALinear(n_in, n_out, init)]
    return nn.Sequential(*parts, nn.ReLU()) if relu else nn.Sequential(*parts)


class FANet(nn.Module):
    """Flattened image -> FA layers of registry.ARCHS -> batch norm -> FA linear head (logits)."""

    def __init__(self, info, arch: str, width: float, init: str = "pytorch"):
        super().__init__()
        sizes = [info.shape[0] * info.shape[1] * info.shape[2]] + [scaled(u, width) for u in get_arch(arch).units]
        hidden = [fa_layer(a, b, True, init) for a, b in zip(sizes[:-1], sizes[1:])]
        self.layers = nn.ModuleList([*hidden, fa_layer(sizes[-1], info.num_classes, False, init)])

    def forward(self, x):
        x = x.flatten(1)
        for layer in self.layers:
            x = layer(x)
        return x


class FATrainer(BPTrainer):
    def build_net(self, info, arch: str, cfg, recipe) -> nn.Module:
        return FANet(info, arch, cfg.width, cfg.init).to(recipe.device)
