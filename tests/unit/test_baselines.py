"""Baselines BP, FA and PEPITA: update rules against references, shapes, errors, state, and short real runs."""

import csv
import io
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.conftest import drop_resumes, signal_on_call
from trifecta.cli import main as cli
from trifecta.operations.train import RunSpec, train
from trifecta.training import data
from trifecta.training.algorithms import TRAINERS, build_trainer
from trifecta.training.algorithms.bp import BPNet
from trifecta.training.algorithms.fa import FALinear, FANet, FeedbackAlignment
from trifecta.training.settings import Settings, build_settings
from trifecta.training.registry import DATASETS, Dataset
from trifecta.training.runstate import TrainingInterrupted

CIFAR10, MNIST = DATASETS["cifar10"], DATASETS["mnist"]
CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These networks are tiny: one thread is as fast unloaded and far faster on a busy 2-core runner."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(algo, arch, info=MNIST, seed=0, **settings):
    torch.manual_seed(seed)
    cfg = Settings(**{"width": 0.0625, "eval_batch_size": 64, **settings}).validate()
    return build_trainer(algo, info, arch, cfg, CPU)


def digits(n=128):
    """n real, normalised mnist5k training digits."""
    train_split, _ = data.load_dataset("mnist5k", "unused")
    return data.normalize(train_split.images[:n], DATASETS["mnist5k"]), train_split.labels[:n]


# ---- Feedback alignment ----

def test_fa_function_is_backprop_when_feedback_is_the_weight():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=gen, requires_grad=True)
    w = torch.randn(3, 7, generator=gen, requires_grad=True)
    g = torch.randn(5, 3, generator=gen)
    FeedbackAlignment.apply(x, w, w.detach().clone()).backward(g)
    fa_x, fa_w = x.grad, w.grad
    x.grad = w.grad = None
    F.linear(x, w).backward(g)
    assert torch.equal(fa_x, x.grad) and torch.equal(fa_w, w.grad)
    x.grad = w.grad = None
    FeedbackAlignment.apply(x, w, torch.randn(3, 7, generator=gen)).backward(g)
    assert not torch.allclose(fa_x, x.grad) and torch.equal(fa_w, w.grad)  # dW = dy^T x needs no feedback


@pytest.mark.parametrize("tied", [True, False])
def test_fa_network_gradients(tied, monkeypatch):
    net = FANet(MNIST, "t", 0.02)
    if tied:
        for m in net.modules():
            if isinstance(m, FALinear):
                m.feedback.copy_(m.weight)
    x, y = digits(32)

    def grads():
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        return [layer[1].weight.grad.clone() for layer in net.layers]

    fa = grads()
    with monkeypatch.context() as m:
        m.setattr(FALinear, "forward", nn.Linear.forward)  # plain autograd: dx = dy W
        bp = grads()
    assert len(fa) == 5
    torch.testing.assert_close(fa[-1], bp[-1], rtol=0, atol=0)  # the head's own gradient is exact either way
    for a, b in zip(fa[:-1], bp[:-1]):
        if tied:
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
        else:
            assert not torch.allclose(a, b, rtol=1e-2, atol=1e-4)


def test_fa_lowers_the_loss_on_real_digits():
    trainer = make("fa", "t", width=0.1)
    x, y = digits(256)
    losses = [trainer.train_step(x, y, i, None)[0, 0].item() for i in range(40)]
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.2
    feedback = [m.feedback for m in trainer.net.modules() if isinstance(m, FALinear)]
    assert all(not b.requires_grad for b in feedback)
    assert all(name.endswith("feedback") for name in trainer.net.state_dict() if "feedback" in name)


# ---- PEPITA ----

TINY = Dataset("tiny", 3, (1, 2, 2), (0.5,), (0.25,), 6, 6)  # PEPITA works on pixels: x * 0.25 + 0.5


def test_pepita_step_equals_the_hand_computed_update():
    trainer = make("pep", "t", info=TINY, width=1.0, pep_hidden=5, dropout=0.4, momentum=0.9,
                   lr_schedule=[(0, 0.5)])
    w1, w2 = (layer.weight.detach().clone() for layer in trainer.net.layers)
    proj = trainer.net.projection.clone()  # (inputs, classes)
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(6, 1, 2, 2, generator=gen), torch.tensor([0, 1, 2, 2, 1, 0])
    velocity = [torch.zeros_like(w1), torch.zeros_like(w2)]
    for step in range(2):  # two steps: the second one exercises the momentum buffer
        mask = (torch.rand(6, 5, generator=torch.Generator().manual_seed(step)) >= 0.4).float() / 0.6
        d1, d2 = torch.zeros_like(w1), torch.zeros_like(w2)
        for n in range(6):  # one sample at a time, as in Algorithm 1
            xn = x[n].flatten() * 0.25 + 0.5
            h = torch.relu(w1 @ xn) * mask[n]
            e = torch.softmax(w2 @ h, 0) - F.one_hot(y[n], 3).float()
            x_mod = xn + proj @ e  # modulated input: x + F e
            h_mod = torch.relu(w1 @ x_mod) * mask[n]
            d1 += torch.outer(h - h_mod, x_mod) / 6
            d2 += torch.outer(e, h_mod) / 6
        velocity = [0.9 * v + d if step else d for v, d in zip(velocity, (d1, d2))]
        w1, w2 = w1 - 0.5 * velocity[0], w2 - 0.5 * velocity[1]
        trainer.train_step(x, y, step, torch.Generator().manual_seed(step))
        torch.testing.assert_close(trainer.net.layers[0].weight, w1)
        torch.testing.assert_close(trainer.net.layers[1].weight, w2)
    assert torch.equal(trainer.net.projection, proj)  # F stays fixed


def test_pepita_projection_and_network():
    trainer = make("pep", "t", width=0.5, pep_hidden=64)
    bound = 0.05 * (6 / 784) ** 0.5
    proj = trainer.net.projection
    assert proj.shape == (784, 10) and proj.abs().max() <= bound and proj.abs().max() > 0.9 * bound
    assert [layer.weight.shape for layer in trainer.net.layers] == [(32, 784), (10, 32)]
    assert all(layer.bias is None for layer in trainer.net.layers)
    mask = trainer.dropout_mask(1000, torch.Generator().manual_seed(0))
    assert torch.equal(mask.unique(), torch.tensor([0.0, 1 / 0.9])) and abs((mask == 0).float().mean() - 0.1) < 0.01


# ---- Backpropagation ----

def test_bp_layer_order_and_shapes():
    net = BPNet(CIFAR10, "d", 0.25)
    assert len(net.layers) == 13
    for i, block in enumerate(net.layers[:-1], start=1):
        kinds = [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] + ([nn.MaxPool2d] if i in (2, 6, 10) else [])
        assert [type(m) for m in block] == kinds
        assert block[0].bias is None
    assert (net.layers[-1].in_features, net.layers[-1].out_features) == (128 * 4 * 4, 10)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    shallow = BPNet(MNIST, "s", 0.125)
    assert shallow.layers[-1].in_features == 64 * 3 * 3 and len(shallow.layers) == 7


@pytest.mark.parametrize("algo,arch,layers", [("bp", "d", 13), ("bp", "s", 7), ("fa", "f", 7),
                                              ("fa", "t", 5), ("pep", "t", 2)])
def test_trainer_interface(algo, arch, layers):
    trainer = make(algo, arch)
    x, y = digits(16)
    rows = trainer.train_step(x, y, 0, torch.Generator().manual_seed(0))
    assert trainer.num_layers == layers and rows.shape == (layers, 2)
    assert trainer.step_metrics == ("loss", "grad_norm") and not trainer.scores_are_goodness
    assert (rows[:, 0] == rows[0, 0]).all() and (rows[:, 1] > 0).all()
    trainer.net.eval()
    scores = trainer.scores(x)
    assert scores.shape == (16, 10, 1) and scores.dtype == torch.float32
    assert trainer.max_abs_weights().shape == (layers,)
    assert trainer.layer_weight(layers - 1).shape[0] == 10


@pytest.mark.parametrize("algo,archs", [("bp", "ft"), ("fa", "sd"), ("pep", "sdf")])
def test_unsupported_architectures_are_errors(algo, archs):
    for arch in archs:
        with pytest.raises(ValueError, match=f"algorithm '{algo}' supports architectures"):
            make(algo, arch)


def test_cli_names_an_unsupported_combination(tmp_path, capsys):
    argv = ["train", "--dataset", "mnist5k", "--arch", "s", "--algo", "fa", "--seed", "0", "--out", str(tmp_path)]
    assert cli(argv) == 1
    assert "algorithm 'fa' supports architectures f, t, not 's'" in capsys.readouterr().err


@pytest.mark.parametrize("algo,arch", [("bp", "s"), ("fa", "t"), ("pep", "t")])
def test_state_dict_round_trip(algo, arch):
    a, b = make(algo, arch, seed=0), make(algo, arch, seed=1)
    x, y = digits(16)
    a.train_step(x, y, 0, torch.Generator().manual_seed(0))
    saved = io.BytesIO()
    torch.save(a.state_dict(), saved)  # as a checkpoint does: no tensors shared between a and b
    saved.seek(0)
    b.load_state_dict(torch.load(saved, weights_only=True))  # weights, optimiser state, feedback / projection
    for t in (a, b):
        t.train_step(x, y, 1, torch.Generator().manual_seed(1))
    for (name, p), q in zip(a.net.state_dict().items(), b.net.state_dict().values()):
        assert torch.equal(p, q), name


# ---- Whole runs on mnist5k ----

RUNS = {  # reduced networks, no augmentation, 2 epochs of the 4000 training digits
    "bp": ("d", ["width=0.0625", "batch_size=64", "augment=false"]),
    "fa": ("t", ["width=0.125", "batch_size=64", "augment=false"]),
    "pep": ("t", ["width=0.25"]),  # the source's own defaults: batch 64, lr 0.1 on MNIST, no augmentation
}


def run(tmp_path, algo, name="run", extra=()):
    arch, settings = RUNS[algo]
    cfg = build_settings(overrides=["epochs=2", "eval_epochs=1,2", "subset_test=500", "checkpoint_every=1",
                                  *settings, *extra], algo=algo, dataset="mnist5k")
    spec = RunSpec("mnist5k", arch, algo, 0, tmp_path / name, tmp_path / "data", cfg, device="cpu",
                   deterministic=True)
    return spec, train(spec)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("algo", ["bp", "fa", "pep"])
def test_baseline_learns_mnist5k(tmp_path, algo):
    spec, summary = run(tmp_path, algo)
    assert summary["evals"]["2"]["acc_last"] > 0.7  # chance is 0.1
    steps = read(spec.out_dir / "steps.csv")
    assert set(steps[0]) == {"epoch", "step", "layer", "loss", "grad_norm"}
    assert len(steps) == 2 * (4000 // 64) * {"bp": 13, "fa": 5, "pep": 2}[algo]


@pytest.mark.parametrize("algo", ["bp", "fa", "pep"])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, algo):
    small = ["subset_train=640", "augment=true"]  # augmentation: the generator's stream must resume too
    _, full = run(tmp_path, algo, "full", small)
    part_spec, _ = run(tmp_path, algo, "part", small)
    drop_resumes(part_spec, keep=lambda name, entry: entry["epoch"] != 2)  # killed during epoch 2
    _, resumed = run(tmp_path, algo, "part", small)
    assert resumed["evals"] == full["evals"]
    assert read(tmp_path / "part" / "steps.csv") == read(tmp_path / "full" / "steps.csv")
    assert json.loads((tmp_path / "part" / "run.json").read_text())["resumes"][-1]["from_epoch"] == 1


@pytest.mark.parametrize("algo", ["bp", "fa", "pep"])
def test_a_run_stopped_mid_epoch_resumes_with_the_same_draws(tmp_path, algo, monkeypatch):
    """SIGTERM in the middle of epoch 2 (10 steps): the partial epoch is checkpointed with the loader's state, so
    the rerun continues with the same batches, augmentation and PEPITA's dropout masks as an uninterrupted run."""
    small = ["subset_train=640", "augment=true"]
    _, full = run(tmp_path, algo, "full", small)
    with monkeypatch.context() as m:
        signal_on_call(m, TRAINERS[algo], "train_step", 10 + 4)
        with pytest.raises(TrainingInterrupted, match="during epoch 2: saved .* after 4 of 10 steps"):
            run(tmp_path, algo, "part", small)
    _, resumed = run(tmp_path, algo, "part", small)
    assert resumed["evals"] == full["evals"]
    assert read(tmp_path / "part" / "steps.csv") == read(tmp_path / "full" / "steps.csv")
    assert json.loads((tmp_path / "part" / "run.json").read_text())["resumes"][-1]["checkpoint"] == \
        "resume_epoch_0001_step_0004.pt"
