"""Differential test: the fast FF trainer against a plain reference with the released code's semantics.

The reference is written from the paper and from ../shared/notes/released-code.md (what the authors'
implementation does, in words): every block steps its own Adam inside the forward pass, over the previous
block's parameters and its own (the label embedding's for block 0, when it is learned); under OLU block i
trains when (i % 2 == 0) xor (iteration % 2 == 0) and passes its output on attached when it rests; goodness is
the mean of squares after the pool; SymBa is softplus(alpha (g- - g+)) averaged over pairs, FTL the mean over
all 2N samples of softplus(tau - g+) and softplus(g- - tau); the norm is BatchNorm2d, nn.LayerNorm([C, H, W])
or the paper's root-mean-square form before each conv, in plain autograd ops. In float64, from the same
weights, batches and negatives, the project's one-backward trainer must agree to 1e-7 (relative) in every
parameter, running statistic, loss and evaluation goodness: every cell of Table 1 on the shallow CNN (both
layer-norm forms for the ln cells), TFF on the deep CNN and the FCN, and a learned label plane without OLU.
"""

import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from trifecta.training import data
from trifecta.training.algorithms import build_trainer
from trifecta.training.algorithms.ff import wrong_labels
from trifecta.training.settings import Settings
from trifecta.training.registry import DATASETS, get_arch, parse_ff_name

MNIST5K = DATASETS["mnist5k"]
STEPS, BATCH, RTOL = 6, 16, 1e-7


class RmsNorm(nn.Module):
    """The paper's layer norm (footnote 2): divide by the root mean square of all features, eps 1e-6."""

    def forward(self, x):
        return x / x.pow(2).flatten(1).mean(1).add(1e-6).sqrt().view(-1, *[1] * (x.dim() - 1))


class Block(nn.Module):
    """norm -> conv 3x3 (or linear), no bias -> ReLU -> optional 2x2 max-pool, in the paper's order."""

    def __init__(self, norm: nn.Module, weight: nn.Module, pool: bool):
        super().__init__()
        self.norm, self.weight = norm, weight
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x):
        return self.pool(F.relu(self.weight(self.norm(x))))


class ReleasedFF:
    """The released code's FF network and training step, built from a trainer's initial weights."""

    def __init__(self, trainer, arch: str, rms: bool, olu: bool, learned: bool, loss: str, tau: float, alpha: float):
        net = trainer.net
        self.olu, self.loss, self.tau, self.alpha, self.plane, self.conv = olu, loss, tau, alpha, net.plane, net.conv
        self.embedding = nn.Embedding(*net.label_matrix.shape)
        self.embedding.weight = nn.Parameter(net.label_matrix.detach().clone(), requires_grad=learned)
        self.blocks = []
        for i, layer in enumerate(net.layers, start=1):  # the trainer's weights, norms rebuilt or copied
            norm = RmsNorm() if rms else copy.deepcopy(layer.norm)  # BatchNorm2d, nn.LayerNorm or Identity
            self.blocks.append(Block(norm, copy.deepcopy(layer.weight), i in get_arch(arch).pools))
        self.optimizers = []
        for i, block in enumerate(self.blocks):
            previous = list(self.blocks[i - 1].parameters()) if i else ([self.embedding.weight] if learned else [])
            self.optimizers.append(torch.optim.Adam(previous + list(block.parameters()), lr=1e-3))

    def inputs(self, images, labels):
        x = torch.cat([images, self.embedding(labels).view(-1, 1, *self.plane)], dim=1)
        return x if self.conv else x.flatten(1)

    def objective(self, out):
        g_pos, g_neg = out.pow(2).flatten(1).mean(1).chunk(2)
        if self.loss == "symba":
            return F.softplus(self.alpha * (g_neg - g_pos)).mean()
        return torch.cat([F.softplus(self.tau - g_pos), F.softplus(g_neg - self.tau)]).mean()

    def step(self, images, labels, negatives, iteration: int) -> dict[int, float]:
        """One training step, block by block; returns the loss of every block that trained."""
        h = self.inputs(torch.cat([images, images]), torch.cat([labels, negatives]))
        losses = {}
        for i, (block, opt) in enumerate(zip(self.blocks, self.optimizers)):
            out = block(h)
            if not self.olu or (i % 2 == 0) != (iteration % 2 == 0):
                loss = self.objective(out)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses[i] = loss.item()
                h = out.detach()
            else:  # resting: the next block's objective reaches this one
                h = out
        return losses

    @torch.no_grad()
    def goodness(self, images, classes: int) -> torch.Tensor:
        """Evaluation: every label, every block, running statistics: (N, classes, blocks)."""
        for block in self.blocks:
            block.eval()
        per_label = []
        for c in range(classes):
            h = self.inputs(images, torch.full((len(images),), c))
            goods = []
            for block in self.blocks:
                h = block(h)
                goods.append(h.pow(2).flatten(1).mean(1))
            per_label.append(torch.stack(goods, dim=1))
        return torch.stack(per_label, dim=1)

    def state(self) -> dict:
        """Parameters and running statistics under the fast trainer's state_dict names."""
        state = {"label_matrix": self.embedding.weight}
        for i, block in enumerate(self.blocks):
            for name, value in block.state_dict(keep_vars=True).items():
                state[f"layers.{i}.{name}"] = value
        return state


def assert_close(actual, expected, what):
    scale = expected.abs().max().clamp_min(1e-30)
    error = (actual - expected).abs().max()
    assert error <= RTOL * scale, f"{what}: max |difference| {error:.3g} > {RTOL} x {scale:.3g}"


@pytest.fixture(scope="module")
def digits():
    """Real digits, normalised, float64: STEPS batches for training and one for evaluation."""
    train_split, _ = data.load_dataset("mnist5k", "unused")
    idx = torch.randperm(len(train_split.labels), generator=torch.Generator().manual_seed(0))[: (STEPS + 1) * BATCH]
    images = data.normalize(train_split.images[idx], MNIST5K, dtype=torch.float64)
    return images.split(BATCH), train_split.labels[idx].split(BATCH)


TABLE1 = [f"{loss}-{row}" for row in ("ln", "bn", "ln-olu", "bn-olu") for loss in ("ftl2", "ftl10", "symba")]
CASES = ([(algo, "s", {}) for algo in TABLE1]
         + [(algo, "s", {"layer_norm": "pytorch"}) for algo in TABLE1 if "-ln" in algo]
         + [("tff", "d", {}), ("tff", "f", {}), ("symba-bn", "s", {"label_matrix": "learned"})])


@pytest.mark.parametrize("algo, arch, settings", CASES,
                         ids=[f"{a}/{arch}" + "".join(f"-{v}" for v in s.values()) for a, arch, s in CASES])
def test_fast_trainer_equals_the_released_semantics(algo, arch, settings, digits):
    images, labels = digits
    torch.manual_seed(0)
    cfg = Settings(width=1 / 16, **settings).validate()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        fast = build_trainer(algo, MNIST5K, arch, cfg, torch.device("cpu"))
    finally:
        torch.set_default_dtype(default)
    spec = parse_ff_name(algo)
    rms = spec.norm == "ln" and cfg.layer_norm == "rms"
    reference = ReleasedFF(fast, arch, rms, spec.olu, fast.learn_labels, spec.loss, spec.tau or cfg.tau, cfg.alpha)
    assert fast.learn_labels == (spec.olu or settings.get("label_matrix") == "learned")
    for step in range(STEPS):
        generator = torch.Generator().manual_seed(step)
        negatives = wrong_labels(labels[step], 10, torch.Generator().manual_seed(step))
        expected = reference.step(images[step], labels[step], negatives, step)
        metrics = fast.train_step(images[step], labels[step], step, generator)
        for i, loss in expected.items():
            assert_close(metrics[i, 0], torch.tensor(loss, dtype=torch.float64), f"step {step} loss of layer {i + 1}")
    state = reference.state()
    ours = fast.net.state_dict()
    assert set(ours) == set(state)
    for name, value in ours.items():
        assert_close(value.double(), state[name].detach().double(), name)
    fast.net.eval()
    assert_close(fast.scores(images[STEPS]), reference.goodness(images[STEPS], 10), "evaluation goodness")


def test_initial_weights_have_the_released_codes_range():
    """PyTorch's default initialisation (the released code keeps it): every weight within 1/sqrt(fan_in)."""
    for arch in ("s", "d", "f"):
        net = build_trainer("tff", DATASETS["cifar10"], arch, Settings().validate(), torch.device("cpu")).net
        for i, layer in enumerate(net.layers, start=1):
            w = layer.weight.weight
            bound = w[0].numel() ** -0.5
            assert w.abs().max() <= bound, (arch, i)
            assert w.abs().max() > 0.95 * bound and w.std() > 0.5 * bound / 3 ** 0.5, (arch, i)  # uniform, full range
    old = build_trainer("tff", DATASETS["cifar10"], "s", Settings(init="kaiming_relu").validate(),
                        torch.device("cpu")).net
    w = old.layers[1].weight.weight
    assert w.abs().max() > 1.5 * w[0].numel() ** -0.5  # the other setting: gain sqrt(2), bound sqrt(6 / fan_in)
