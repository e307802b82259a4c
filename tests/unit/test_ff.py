"""The FF trainer (algorithms/ff.py): losses, negatives, the OLU schedule, gradients of greedy and overlapping
updates against per-objective references, one Adam per objective, step metrics, scores, and the one-backward
step against the paper's Algorithm 1."""

import copy

import pytest
import torch
import torch.nn.functional as F

from tests.unit.test_models import plain_goodness, plain_layer
from trifecta.training.algorithms import build_trainer
from trifecta.training.algorithms.ff import ftl_loss, olu_active, symba_loss, wrong_labels
from trifecta.training.settings import Settings
from trifecta.training.models import goodness
from trifecta.training.registry import DATASETS, check_algorithm, parse_ff_name

MNIST = DATASETS["mnist"]

def test_losses():
    g_pos, g_neg = torch.tensor([5.0]), torch.tensor([1.0])
    sp = lambda v: torch.log1p(torch.exp(torch.tensor(v))).item()  # noqa: E731
    assert ftl_loss(g_pos, g_neg, 2.0).item() == pytest.approx((sp(2.0 - 5.0) + sp(1.0 - 2.0)) / 2)
    # Averaged over pairs, FTL is the released code's mean over all 2N samples of both terms.
    gp, gn = torch.tensor([5.0, 0.5, 2.5]), torch.tensor([1.0, 3.0, 2.0])
    both = torch.cat([F.softplus(2.0 - gp), F.softplus(gn - 2.0)])
    assert ftl_loss(gp, gn, 2.0).mean().item() == pytest.approx(both.mean().item())
    assert symba_loss(g_pos, g_neg, 4.0).item() == pytest.approx(sp(-16.0))
    # Numerically safe at large separations, in both directions (appendix E).
    big = torch.tensor([1e4])
    assert symba_loss(big, torch.zeros(1), 4.0).item() == 0.0
    assert symba_loss(torch.zeros(1), big, 4.0).item() == pytest.approx(4e4)
    g = torch.tensor([1.0], requires_grad=True)
    symba_loss(g, torch.tensor([3e3]), 4.0).backward()
    assert torch.isfinite(g.grad).all()


def test_wrong_labels_are_uniform_and_never_true():
    gen = torch.Generator().manual_seed(0)
    y = torch.zeros(20000, dtype=torch.long)
    neg = wrong_labels(y, 10, gen)
    assert (neg != y).all()
    counts = torch.bincount(neg, minlength=10)[1:].float()
    assert counts.min() / counts.max() > 0.9


def test_algorithm_names():
    assert parse_ff_name("vff") == parse_ff_name("ftl2-ln")
    spec = parse_ff_name("tff")
    assert (spec.loss, spec.norm, spec.olu) == ("symba", "bn", True)
    assert parse_ff_name("ftl10-bn-olu").tau == 10.0
    assert parse_ff_name("symba-none").norm == "none"
    for bad in ("symba", "ftl-xx", "tff-olu", "banana"):
        with pytest.raises(ValueError, match="unknown algorithm"):
            check_algorithm(bad)


def test_olu_schedule_alternates():
    # objective i is trained when (i mod 2 = 0) xor (iteration mod 2 = 0)
    assert [olu_active(i, 0) for i in range(4)] == [False, True, False, True]
    assert [olu_active(i, 1) for i in range(4)] == [True, False, True, False]


def make_trainer(algo, seed=0):
    torch.manual_seed(seed)
    cfg = Settings(width=0.05, eval_batch_size=64).validate()
    return build_trainer(algo, MNIST, "s", cfg, torch.device("cpu"))


def batch(seed=1, n=16):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def objective_grads(trainer, x, y, neg, layer_range, objective):
    """Gradients of objective `objective`'s loss alone, letting it flow through `layer_range`."""
    net = copy.deepcopy(trainer.net)
    h = net.embed(torch.cat([x, x]), torch.cat([y, neg]), grad_labels=objective == 0)
    for i, layer in enumerate(net.layers[: objective + 1]):
        if i not in layer_range:
            h = h.detach()
        h = plain_layer(layer, h)
    g_pos, g_neg = plain_goodness(h).chunk(2)
    trainer.loss_fn(g_pos, g_neg).mean().backward()
    return net


@pytest.mark.parametrize("iteration", [0, 1])
def test_olu_gradients_follow_the_schedule(iteration):
    trainer = make_trainer("tff")
    x, y = batch()
    neg = wrong_labels(y, 10, torch.Generator().manual_seed(5))
    # Reference gradients: each active objective i alone, flowing through layers i-1 and i.
    expected = {}
    for i in range(trainer.num_layers):
        if olu_active(i, iteration):
            ref = objective_grads(trainer, x, y, neg, {i - 1, i} if i else {0}, i)
            for j in ({i - 1, i} if i else {0}):
                expected[j] = ref.layers[j].weight.weight.grad
            if i == 0:
                expected["labels"] = ref.label_matrix.grad
    before = copy.deepcopy(trainer.net.state_dict())
    trainer.train_step(x, y, iteration, torch.Generator().manual_seed(5))
    for j, layer in enumerate(trainer.net.layers):
        grad = layer.weight.weight.grad
        if j in expected:
            torch.testing.assert_close(grad, expected[j])
            assert not torch.equal(layer.weight.weight, before[f"layers.{j}.weight.weight"])
        else:  # only the last layer rests, on iterations where its objective is inactive
            assert j == trainer.num_layers - 1 and iteration == 1
            assert grad is None and torch.equal(layer.weight.weight, before[f"layers.{j}.weight.weight"])
    if iteration == 1:  # objective 0 active: the label matrix learns
        torch.testing.assert_close(trainer.net.label_matrix.grad, expected["labels"])
    else:
        assert trainer.net.label_matrix.grad is None


def test_greedy_layers_train_on_detached_input():
    trainer = make_trainer("symba-bn")
    x, y = batch()
    neg = wrong_labels(y, 10, torch.Generator().manual_seed(5))
    refs = {i: objective_grads(trainer, x, y, neg, {i}, i).layers[i].weight.weight.grad for i in range(6)}
    trainer.train_step(x, y, 0, torch.Generator().manual_seed(5))
    for i, layer in enumerate(trainer.net.layers):
        torch.testing.assert_close(layer.weight.weight.grad, refs[i])
    assert not trainer.net.label_matrix.requires_grad


def test_each_objective_has_its_own_adam():
    trainer = make_trainer("tff")
    owned = [{id(p) for p in opt.param_groups[0]["params"]} for opt in trainer.optimizers]
    layers = [{id(p) for p in layer.parameters()} for layer in trainer.net.layers]
    assert owned[0] == layers[0] | {id(trainer.net.label_matrix)}
    for i in range(1, 6):
        assert owned[i] == layers[i] | layers[i - 1]


def test_step_metrics_shape_and_loss_drops_on_a_repeated_batch():
    trainer = make_trainer("symba-ln")
    x, y = batch(n=32)
    first = trainer.train_step(x, y, 0, torch.Generator().manual_seed(0))
    assert first.shape == (6, len(trainer.step_metrics))
    for it in range(1, 30):
        last = trainer.train_step(x, y, it, torch.Generator().manual_seed(0))
    assert last[:, 0].mean() < first[:, 0].mean()  # loss
    assert last[-1, 1] > first[-1, 1]  # separation of the last layer grows


def test_scores_cover_every_label_and_layer():
    trainer = make_trainer("tff")
    x, _ = batch(n=7)
    trainer.net.eval()
    s = trainer.scores(x)
    assert s.shape == (7, 10, 6)
    hs = trainer.net(x[3:4], torch.tensor([4]))
    torch.testing.assert_close(s[3, 4], torch.stack([goodness(h)[0] for h in hs]))


def algorithm1_step(trainer, x, y, neg, iteration):
    """The paper's Algorithm 1, literally: layer by layer, one backward and one optimiser step per objective."""
    hidden = trainer.net.embed(torch.cat([x, x]), torch.cat([y, neg]),
                               grad_labels=trainer.spec.olu and trainer.active(0, iteration))
    losses = []
    for i, layer in enumerate(trainer.net.layers):
        out = plain_layer(layer, hidden)
        if trainer.active(i, iteration):
            g_pos, g_neg = plain_goodness(out).chunk(2)
            losses.append((i, trainer.loss_fn(g_pos, g_neg).mean()))
            hidden = out.detach()
        else:  # OLU: the next objective updates this layer too
            hidden = out
    for i, loss in losses:
        trainer.optimizers[i].zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizers[i].step()


@pytest.mark.parametrize("algo", ["tff", "symba-bn", "vff"])
def test_fast_step_equals_algorithm1(algo):
    """One backward over all active objectives, fused goodness and norm kernels, the pool before the ReLU: the
    same parameters as the paper's Algorithm 1 in plain autograd ops, up to floating-point noise."""
    fast = make_trainer(algo)
    slow = make_trainer(algo)
    for iteration in range(4):
        x, y = batch(seed=iteration)
        fast.train_step(x, y, iteration, torch.Generator().manual_seed(iteration))
        algorithm1_step(slow, x, y, wrong_labels(y, 10, torch.Generator().manual_seed(iteration)), iteration)
    for (name, a), b in zip(fast.net.state_dict().items(), slow.net.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
