"""Architectures, losses, goodness and the layer-update rules of FF (greedy and OLU)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from trifecta.algorithms import build_trainer
from trifecta.registry import check_algorithm, parse_ff_name
from trifecta.algorithms.ff import ftl_loss, olu_active, symba_loss, wrong_labels
from trifecta.config import TrainConfig
from trifecta.registry import DATASETS
from trifecta.models import FFNet, LengthNorm, MaxPool2x2, goodness

CIFAR10 = DATASETS["cifar10"]
MNIST = DATASETS["mnist"]


def count(net, with_labels=False):
    return sum(p.numel() for name, p in net.named_parameters() if with_labels or name != "label_matrix")


def test_parameter_counts_on_cifar10():
    # Conv weights alone (the paper counts 2.8 M and 8.5 M, Figure 12).
    convs = lambda net: sum(layer.weight.weight.numel() for layer in net.layers)  # noqa: E731
    assert convs(FFNet(CIFAR10, "s", 1.0, "bn", False)) == 2_806_272
    assert convs(FFNet(CIFAR10, "d", 1.0, "bn", False)) == 8_481_024
    assert round(count(FFNet(CIFAR10, "s", 1.0, "bn", False)) / 1e6, 1) == 2.8
    assert round(count(FFNet(CIFAR10, "d", 1.0, "bn", False)) / 1e6, 1) == 8.5
    # FCN: six 2048-unit layers on the 4096 inputs of image + label plane (see README, deviations).
    fcn = FFNet(CIFAR10, "f", 1.0, "ln", False)
    assert [layer.weight.weight.shape for layer in fcn.layers][:2] == [(2048, 4096), (2048, 2048)]
    assert count(fcn) == 4096 * 2048 + 5 * 2048 * 2048


@pytest.mark.parametrize("arch,n_layers,last_shape", [("s", 6, (512, 4, 4)), ("d", 12, (512, 4, 4)),
                                                      ("f", 6, (2048,)), ("t", 4, (2000,))])
def test_layer_outputs(arch, n_layers, last_shape):
    net = FFNet(CIFAR10, arch, 1.0 if arch in "ft" else 0.25, "bn", False)
    hs = net(torch.randn(3, 3, 32, 32), torch.tensor([0, 1, 9]))
    assert len(hs) == n_layers
    expected = last_shape if arch in "ft" else (round(last_shape[0] * 0.25), *last_shape[1:])
    assert hs[-1].shape == (3, *expected)
    assert all((h >= 0).all() for h in hs)  # ReLU


def test_width_multiplier_and_mnist_shapes():
    net = FFNet(MNIST, "s", 0.125, "ln", False)
    assert [layer.weight.out_channels for layer in net.layers] == [16, 16, 32, 32, 32, 64]
    assert net(torch.randn(2, 1, 28, 28), torch.tensor([3, 4]))[-1].shape == (2, 64, 3, 3)


def test_label_plane_is_onehot_times_matrix():
    net = FFNet(CIFAR10, "s", 0.1, "none", False)
    x = torch.zeros(2, 3, 32, 32)
    y = torch.tensor([2, 7])
    onehot = torch.nn.functional.one_hot(y, 10).float()
    embedded = net.embed(x, y)
    assert embedded.shape == (2, 4, 32, 32)
    torch.testing.assert_close(embedded[:, 3].flatten(1), onehot @ net.label_matrix)
    assert not FFNet(CIFAR10, "s", 0.1, "none", learn_labels=False).label_matrix.requires_grad


def test_goodness_is_mean_square():
    h = torch.tensor([[1.0, -2.0, 3.0, 0.0]])
    assert goodness(h).item() == pytest.approx((1 + 4 + 9) / 4)


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
    cfg = TrainConfig(width=0.05, eval_batch_size=64).validate()
    return build_trainer(algo, MNIST, "s", cfg, torch.device("cpu"))


def batch(seed=1, n=16):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)


def plain_layer(layer, x):
    """A layer as the paper writes it, in plain autograd ops: norm -> conv -> ReLU -> pool."""
    if isinstance(layer.norm, LengthNorm):
        x = x / x.pow(2).flatten(1).mean(1).add(layer.norm.eps).sqrt().view(-1, *[1] * (x.dim() - 1))
    else:
        x = layer.norm(x)
    return layer.pool(F.relu(layer.weight(x)))


def plain_goodness(h):
    return h.pow(2).flatten(1).mean(1)


def test_fused_goodness_and_length_norm_have_exact_gradients():
    x = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    for t in (x, x.to(memory_format=torch.channels_last), x.flatten(1)):
        t = t.detach().requires_grad_()
        assert torch.autograd.gradcheck(goodness, (t,))
        assert torch.autograd.gradcheck(LengthNorm(), (t,))
        torch.testing.assert_close(goodness(t), plain_goodness(t))
        # gradcheck's tolerances are loose; against plain autograd the float64 gradient agrees to rounding
        dy = torch.randn_like(t)
        plain = t / t.pow(2).flatten(1).mean(1).add(1e-6).sqrt().view(-1, *[1] * (t.dim() - 1))
        torch.testing.assert_close(torch.autograd.grad(LengthNorm()(t), t, dy)[0], torch.autograd.grad(plain, t, dy)[0],
                                   rtol=1e-12, atol=1e-14)


def test_layers_pool_before_relu_exactly():
    trainer = make_trainer("symba-ln")
    x = torch.randn(8, 2, 28, 28, requires_grad=True)
    for layer in trainer.net.layers[:3]:  # the first and the third pool
        out, ref = layer(x), plain_layer(layer, x)
        torch.testing.assert_close(out, ref)
        torch.testing.assert_close(torch.autograd.grad(out.pow(2).sum(), x)[0],
                                   torch.autograd.grad(ref.pow(2).sum(), x)[0])
        x = out.detach().requires_grad_()


@pytest.mark.parametrize("shape", [(3, 5, 28, 28), (4, 8, 7, 10)])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_evaluation_pool_equals_max_pool_without_indices(shape, layout):
    x = torch.randn(shape).to(memory_format=layout)
    x[0, 0, :2, :2] = 0.5  # a tie
    with torch.no_grad():
        out = MaxPool2x2()(x)
    assert torch.equal(out, F.max_pool2d(x, 2)) and out.is_contiguous(memory_format=layout)
    x.requires_grad_()
    assert MaxPool2x2()(x).grad_fn.name().startswith("MaxPool2DWithIndices")  # training keeps torch's pool


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
