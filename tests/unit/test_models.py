"""FF networks (models.py): architectures and parameter counts, label plane, goodness, length norm, pooling."""

import pytest
import torch
import torch.nn.functional as F

from trifecta.training.models import FFNet, LengthNorm, MaxPool2x2, goodness
from trifecta.training.registry import DATASETS

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
    torch.manual_seed(0)
    net = FFNet(MNIST, "s", 0.05, "ln", learn_labels=False)
    x = torch.randn(8, 2, 28, 28, requires_grad=True)
    for layer in net.layers[:3]:  # the first and the third pool
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
