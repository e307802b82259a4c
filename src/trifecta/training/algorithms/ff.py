"""Forward-Forward training step: losses, greedy or overlapping local updates, goodness evaluation.

Losses (§3.1, §4.1, appendix E): the fixed threshold loss softplus(tau - g+) + softplus(g- - tau), averaged
over all 2N samples as the released code does, and SymBa softplus(-alpha (g+ - g-)), averaged over the N pairs. torch's softplus switches to the identity above 20, which is the paper's guard
against overflow at large separations (appendix E, footnote 7).

Overlapping local updates (§4.3, appendix A, G): objective i is active when (i mod 2 = 0) xor
(iteration mod 2 = 0). An inactive layer's output is not detached, so the next layer's (active) objective
updates both. Each objective has its own Adam over the layers it owns: layer i and layer i-1 (and, for
objective 0, the label matrix when it is learned). Without OLU every objective is active and owns its layer
alone, on detached input (greedy training), and objective 0 the label matrix when it is learned (the
`label_matrix` setting: learned only with OLU by default, §5.1). `iteration` counts the steps of the epoch,
from 0: the released code's OLU counter restarts every epoch.
"""

import torch
import torch.nn.functional as F

from trifecta.training.models import FFNet, LayerGradNorms, goodness
from trifecta.training.registry import parse_ff_name


def ftl_loss(g_pos, g_neg, tau: float):
    """Hinton's threshold loss per pair of samples, halved: its mean over pairs is the mean over all 2N samples
    of softplus(tau - g+) and softplus(g- - tau), as the released code averages them."""
    return 0.5 * (F.softplus(tau - g_pos) + F.softplus(g_neg - tau))


def symba_loss(g_pos, g_neg, alpha: float):
    """SymBa loss per pair of samples (Lee & Song 2023)."""
    return F.softplus(alpha * (g_neg - g_pos))


def olu_active(layer: int, iteration: int) -> bool:
    """Whether objective `layer` (0-based) is optimised at `iteration` under OLU."""
    return (layer % 2 == 0) != (iteration % 2 == 0)


def wrong_labels(labels, num_classes: int, generator):
    """A uniformly random label different from each true label."""
    shift = torch.randint(1, num_classes, labels.shape, generator=generator, device=labels.device)
    return (labels + shift) % num_classes


def ff_net(spec, info, arch: str, cfg) -> FFNet:
    """The network of an FF variant; its label plane is learned with OLU only, unless `label_matrix` says."""
    learn_labels = cfg.label_matrix == "learned" or (cfg.label_matrix == "auto" and spec.olu)
    return FFNet(info, arch, cfg.width, spec.norm, learn_labels, cfg.init, cfg.layer_norm)


class FFTrainer:
    step_metrics = ("loss", "separation", "g_pos", "g_neg", "grad_norm")
    scores_are_goodness = True

    def __init__(self, algo: str, info, arch: str, cfg, recipe):
        self.spec = spec = parse_ff_name(algo)
        self.recipe = recipe
        self.num_classes = info.num_classes
        self.net = ff_net(spec, info, arch, cfg).to(recipe.device)
        self.learn_labels = self.net.label_matrix.requires_grad
        if recipe.channels_last:
            self.net.use_channels_last()
        self.num_layers = len(self.net.layers)
        self.eval_batch_size = cfg.eval_batch_size
        tau = spec.tau if spec.tau is not None else cfg.tau
        if spec.loss == "symba":
            self.loss_fn = lambda gp, gn: symba_loss(gp, gn, cfg.alpha)
        else:
            self.loss_fn = lambda gp, gn: ftl_loss(gp, gn, tau)
        lr = cfg.lr_at(0)
        self.optimizers = [torch.optim.Adam(self.objective_params(i), lr=lr, fused=recipe.fused_adam)
                           for i in range(self.num_layers)]
        self.grad_norms = LayerGradNorms(self.net.layers)
        self._params = list(self.net.parameters())  # zeroed every step: no module-tree walk

    def objective_params(self, i: int) -> list:
        """Parameters optimised by objective i."""
        owned = list(self.net.layers[i].parameters())
        if self.spec.olu and i > 0:
            owned += list(self.net.layers[i - 1].parameters())
        if i == 0 and self.learn_labels:
            owned.append(self.net.label_matrix)
        return owned

    def active(self, i: int, iteration: int) -> bool:
        return not self.spec.olu or olu_active(i, iteration)

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = lr

    def train_step(self, images, labels, iteration: int, generator):
        """One update on 512 positives + 512 negatives; returns (layers, step_metrics) on the device."""
        neg = wrong_labels(labels, self.num_classes, generator)
        x_all = torch.cat([images, images])
        y_all = torch.cat([labels, neg])
        active = [self.active(i, iteration) for i in range(self.num_layers)]
        with self.recipe.autocast_context():
            h = self.net.embed(x_all, y_all, grad_labels=self.learn_labels and active[0])
            goods = []
            for i, layer in enumerate(self.net.layers):
                if i > 0 and not (self.spec.olu and not active[i - 1]):
                    h = h.detach()  # greedy: this layer's objective stops here
                h = layer(h)
                goods.append(goodness(h))
        # The active objectives' losses in one batched call: each loss is a mean over its own samples, so the
        # gradients are those of the per-layer sum. Inactive objectives stay out of the graph entirely.
        g_pos, g_neg = torch.stack([g for g, on in zip(goods, active) if on]).chunk(2, dim=1)
        total = self.loss_fn(g_pos, g_neg).mean(1).sum()
        for p in self._params:
            p.grad = None
        total.backward()
        for opt, on in zip(self.optimizers, active):
            if on:
                opt.step()
        with torch.no_grad():
            g_pos, g_neg = torch.stack(goods).chunk(2, dim=1)
            metrics = [self.loss_fn(g_pos, g_neg).mean(1), (g_pos - g_neg).mean(1), g_pos.mean(1), g_neg.mean(1),
                       self.grad_norms()]
            return torch.stack(metrics, dim=1)

    @torch.no_grad()
    def scores(self, images):
        """Goodness of every image with every label at every layer: (N, classes, layers), float32."""
        c = self.num_classes
        chunk = max(1, self.eval_batch_size // c)
        out = []
        labels = torch.arange(c, device=images.device)
        with self.recipe.autocast_context():
            for part in images.split(chunk):
                x = part.repeat_interleave(c, dim=0)
                y = labels.repeat(len(part))
                g = torch.stack([goodness(h) for h in self.net(x, y)], dim=-1)
                out.append(g.view(len(part), c, -1))
        return torch.cat(out)

    def max_abs_weights(self):
        return torch.stack([layer.weight.weight.detach().abs().max().float() for layer in self.net.layers])

    def layer_weight(self, i: int):
        return self.net.layers[i].weight.weight.detach()

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        for opt, s in zip(self.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(s)
