"""The `trifecta` command's conventions: a help that lists every command, --version, errors that name the
problem, defaults where there is one obvious value."""

import subprocess
import sys

from importlib.metadata import version

import pytest

import trifecta
from trifecta import cli


def run(*args):
    return subprocess.run([sys.executable, "-m", "trifecta.cli", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command_with_one_line():
    result = run("--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for name, (_, text) in cli.COMMANDS.items():
        assert any(line.split() and line.split()[0] == name and text in line for line in lines), name
    assert "--version" in result.stdout


def test_version_and_unknown_commands():
    assert run("--version").stdout.strip() == f"trifecta {trifecta.__version__}" == f"trifecta {version('trifecta')}"
    result = run("trian")
    assert result.returncode == 2 and "unknown command 'trian'" in result.stderr and "train " in result.stderr


def test_every_command_has_its_own_help(capsys):
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_:  # argparse's --help exits with status 0
            cli.main([name, "--help"])
        assert exit_.value.code == 0 and f"trifecta {name}" in capsys.readouterr().out, name


def test_train_help_shows_every_settings_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for line in ("batch_size=512", "lr_schedule=0:0.001", "init=pytorch", "precision=auto", "epochs=100"):
        assert f"  {line} " in text, line


def test_audit_reads_results_lineage_by_default(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["audit"]) == 1  # no lineage yet: an error that names the file
    assert "results/lineage.json" in capsys.readouterr().err


def test_a_job_given_no_gpu_runs_on_the_cpu():
    """The workflow passes each job's `gpu` resource as --gpus: 0 means the CPU, even where torch sees a GPU."""
    import argparse
    from trifecta.operations.devices import add_device_options, device_name
    parser = argparse.ArgumentParser()
    add_device_options(parser)
    assert device_name(parser.parse_args(["--gpus", "0", "--device", "cuda"])) == "cpu"
    assert device_name(parser.parse_args(["--gpus", "1"])) == "auto"
    assert device_name(parser.parse_args([])) == "auto"


def test_a_truncated_metrics_file_is_named(tmp_path, capsys):
    from tests.conftest import write_finished_run
    path = write_finished_run(tmp_path, "mnist5k", "s", "tff", 0, {1: [0.5] * 6})
    path.write_text(path.read_text()[:40])  # a job killed while writing it (before atomic writes), or a bad copy
    assert cli.main(["collect", "--runs", str(path), "--out", str(tmp_path / "runs.csv")]) == 1
    assert f"trifecta collect: error: {path} is not valid JSON" in capsys.readouterr().err
