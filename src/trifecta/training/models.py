"""Forward-Forward networks: label encoding, layers and the paper's architectures (§5.1, §5.2, appendix H).

A layer is normalisation -> 3x3 convolution without bias (or a linear map without bias) -> ReLU -> optional
2x2 max-pool; its goodness is the mean of the squared activations of a sample, after the pool. The label is
encoded as an extra input channel: the one-hot label times a (classes x H*W) matrix, learned when
overlapping local updates are on and fixed random otherwise. LayerGradNorms, the per-layer gradient norm of
the step logs, serves every trainer (FF and the baselines).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from trifecta.training.registry import NORMS, Dataset, get_arch, scaled


def init_weight(weight: torch.Tensor, init: str) -> None:
    """Initial weights of a conv or linear layer: `pytorch` keeps the module's own draw (PyTorch's default,
    uniform Kaiming with a = sqrt(5), bound 1/sqrt(fan_in): the released code's); `kaiming_relu` redraws it
    uniform Kaiming with the ReLU gain (bound sqrt(6/fan_in))."""
    if init == "kaiming_relu":
        nn.init.kaiming_uniform_(weight, nonlinearity="relu")
    elif init != "pytorch":
        raise ValueError(f"unknown init {init!r}; choose pytorch or kaiming_relu")


def _per_sample(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, ...) broadcastable against ref."""
    return t.view(-1, *([1] * (ref.dim() - 1)))


def _sum_of_squares(x: torch.Tensor) -> torch.Tensor:
    """Per-sample sum of squares accumulated in float32, reading x once in its own dtype and memory format.

    Autocast is off so that a bfloat16 x is not first copied to float32 (norms are on autocast's float32 list).
    """
    with torch.autocast(x.device.type, enabled=False):
        return torch.linalg.vector_norm(x, 2, dim=tuple(range(1, x.dim())),
                                        dtype=torch.promote_types(x.dtype, torch.float32)).square()


class _LengthNormFn(torch.autograd.Function):
    """y = x * r with r = (mean(x^2) + eps)^(-1/2) per sample, written in x's dtype by a single kernel.

    Backward: dx = r dy - (r^3 / D) x sum(dy * x). The statistics are float32 (float64 for float64 x);
    autograd's own graph of the same formula materialises several float32 copies of the activations.
    """

    @staticmethod
    def forward(ctx, x, eps: float):
        r = _sum_of_squares(x).div_(x[0].numel()).add_(eps).rsqrt_()
        ctx.save_for_backward(x, r)
        return torch.mul(x, _per_sample(r, x), out=torch.empty_like(x))

    @staticmethod
    def backward(ctx, dy):
        x, r = ctx.saved_tensors
        dims = tuple(range(1, x.dim()))
        dot = torch.sum(dy * x, dim=dims, dtype=r.dtype)  # float32, or float64 for float64 x
        coef = -r.pow(3) * dot / x[0].numel()
        dx = torch.mul(x, _per_sample(coef, x), out=torch.empty_like(x))
        return torch.addcmul(dx, dy, _per_sample(r, x), out=dx), None


class LengthNorm(nn.Module):
    """Hinton's length normalisation: divide each sample by its root mean square, no mean subtraction."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x):
        return _LengthNormFn.apply(x, self.eps)


def make_norm(kind: str, shape: tuple[int, ...], layer_norm: str = "rms") -> nn.Module:
    """The normalisation before a layer whose input has `shape` ((C, H, W) or (features,))."""
    conv = len(shape) == 3
    if kind == "ln":
        return LengthNorm() if layer_norm == "rms" else nn.LayerNorm(list(shape))  # pytorch: the released code's
    if kind == "bn":
        return nn.BatchNorm2d(shape[0]) if conv else nn.BatchNorm1d(shape[0])
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation '{kind}'; choose one of: {', '.join(NORMS)}")


class MaxPool2x2(nn.Module):
    """2x2 max-pool (floor). Without autograd (evaluation, probes) a reshape and amax in the input's own layout,
    which gives the same values without writing max_pool2d's int64 argmax indices (a third of the traffic of
    an evaluation)."""

    def forward(self, x):
        if torch.is_grad_enabled():
            return F.max_pool2d(x, 2)
        h, w = x.shape[2] // 2, x.shape[3] // 2
        if x.is_contiguous(memory_format=torch.channels_last):  # reduce in NHWC order, stay channels-last
            nhwc = x.permute(0, 2, 3, 1)[:, : 2 * h, : 2 * w]
            return nhwc.unflatten(2, (w, 2)).unflatten(1, (h, 2)).amax((2, 4)).permute(0, 3, 1, 2)
        return x[:, :, : 2 * h, : 2 * w].unflatten(3, (w, 2)).unflatten(2, (h, 2)).amax((3, 5))


class FFLayer(nn.Module):
    """normalisation -> conv3x3 / linear (no bias) -> ReLU -> optional max-pool.

    The pool runs before the ReLU: max and ReLU commute exactly (ReLU is monotone), and the ReLU then touches
    a quarter of the elements. It runs in place: neither the convolution nor the pool saves its output.
    """

    def __init__(self, shape: tuple[int, ...], n_out: int, norm: str, pool: bool, init: str = "pytorch",
                 layer_norm: str = "rms"):
        super().__init__()
        n_in, conv = shape[0], len(shape) == 3
        self.norm = make_norm(norm, shape, layer_norm)
        self.weight = nn.Conv2d(n_in, n_out, 3, padding=1, bias=False) if conv else nn.Linear(n_in, n_out, bias=False)
        init_weight(self.weight.weight, init)  # appendix C: "uniform Kaiming" (both forms are)
        self.pool = MaxPool2x2() if pool else nn.Identity()

    def forward(self, x):
        return F.relu(self.pool(self.weight(self.norm(x))), inplace=True)


class _GoodnessFn(torch.autograd.Function):
    """Mean of squares per sample: one read of h forward, one write of dh backward (h's dtype and layout)."""

    @staticmethod
    def forward(ctx, h):
        ctx.save_for_backward(h)
        return _sum_of_squares(h).div_(h[0].numel())

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        scale = grad * (2.0 / h[0].numel())
        return torch.mul(h, _per_sample(scale, h), out=torch.empty_like(h))


def goodness(h: torch.Tensor) -> torch.Tensor:
    """Mean of squared activations per sample, in float32: (N, ...) -> (N,)."""
    return _GoodnessFn.apply(h)


class FFNet(nn.Module):
    """A stack of FF layers with the label encoded as an extra input channel."""

    def __init__(self, info: Dataset, arch: str, width: float, norm: str, learn_labels: bool, init: str = "pytorch",
                 layer_norm: str = "rms"):
        super().__init__()
        layout = get_arch(arch)
        channels, height, width_px = info.shape
        self.conv = layout.conv
        self.plane = (height, width_px)
        # Learned or fixed random (§5.1). Standard normal, as nn.Embedding's (the released code's label plane).
        self.label_matrix = nn.Parameter(torch.randn(info.num_classes, height * width_px), requires_grad=learn_labels)
        shape = (channels + 1, height, width_px) if layout.conv else ((channels + 1) * height * width_px,)
        layers = []
        for i, u in enumerate(layout.units, start=1):
            n_out, pool = scaled(u, width), i in layout.pools
            layers.append(FFLayer(shape, n_out, norm, pool, init, layer_norm))
            shape = (n_out, shape[1] // 2, shape[2] // 2) if pool else (n_out, *shape[1:])
        self.layers = nn.ModuleList(layers)
        self.channels_last = False

    def use_channels_last(self) -> "FFNet":
        """NHWC weights and inputs, cuDNN's fast layout for bfloat16 convolutions (the trainer's choice on CUDA)."""
        self.channels_last = self.conv
        return self.to(memory_format=torch.channels_last)

    def embed(self, images: torch.Tensor, labels: torch.Tensor | None, grad_labels: bool = True) -> torch.Tensor:
        """Concatenate the label plane (one-hot @ label_matrix, i.e. a row gather) to the images. Without labels,
        the neutral label: the mean of the matrix's rows, the encoding of the one-hot average (Hinton 2022)."""
        matrix = self.label_matrix if grad_labels else self.label_matrix.detach()
        rows = matrix.mean(0, keepdim=True).expand(len(images), -1) if labels is None else matrix[labels]
        plane = rows.reshape(-1, 1, *self.plane).to(images.dtype)
        x = torch.cat([images, plane], dim=1)
        if self.conv:
            return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
        return x.flatten(1)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None, layers: int | None = None) -> list[torch.Tensor]:
        """Activations of every layer, or of the first `layers` (no detaching: for evaluation and probing)."""
        h = self.embed(images, labels)
        out = []
        for layer in self.layers[:layers]:
            h = layer(h)
            out.append(h)
        return out


def weight_key(layer: int) -> str:
    """The state-dict key of an FFNet layer's weight (0-based layer): what a snapshot holds of it."""
    return f"layers.{layer}.weight.weight"


class LayerGradNorms:
    """Each layer's gradient l2 norm over all its parameters, NaN for a layer without gradients (e.g. a resting
    last layer under OLU), in a few batched kernels. Parameter lists and index tensors are built once: walking
    the module tree, or copying an index from the host, would cost more host time per step than a kernel."""

    def __init__(self, layers):
        self.layer_params = [list(layer.parameters()) for layer in layers]
        self._index = {}  # (layer of each gradient, ...) -> (index tensor, mask of layers with gradients)

    def __call__(self) -> torch.Tensor:
        grads, owners = [], []
        for i, params in enumerate(self.layer_params):
            for p in params:
                if p.grad is not None:
                    grads.append(p.grad)
                    owners.append(i)
        owners = tuple(owners)
        if owners not in self._index:
            device = grads[0].device
            self._index[owners] = (torch.tensor(owners, device=device),
                                   torch.isin(torch.arange(len(self.layer_params)), torch.tensor(owners)).to(device))
        index, has_grad = self._index[owners]
        squares = torch.stack(torch._foreach_norm(grads)).float().square()
        per_layer = torch.zeros(len(self.layer_params), device=index.device).index_add_(0, index, squares)
        return per_layer.sqrt().masked_fill(~has_grad, float("nan"))
