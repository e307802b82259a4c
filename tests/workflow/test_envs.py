"""Where users run it: the conda environment file as `snakemake --sdm conda` uses it (conda itself is not
installable here), and rules that run the checkout's package whatever environment or working directory runs
them."""

import os
import subprocess
import sys
import tomllib

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from tests.workflow.smk import REPO, copy_workflow, make_bin

CONDA_TO_PIP = {"pytorch": "torch", "matplotlib-base": "matplotlib", "seaborn-base": "seaborn"}


def env_file(name="torch.yaml") -> dict:
    return yaml.safe_load((REPO / "envs" / name).read_text())


def test_the_pip_section_installs_as_conda_runs_it_from_another_folder(tmp_path):
    """Conda writes the `pip:` list to a requirements file in the env's prefix and runs `pip install -U -r` there:
    no option lines, no paths relative to the checkout."""
    pip = next(d["pip"] for d in env_file()["dependencies"] if isinstance(d, dict))
    prefix = tmp_path / "shared" / "conda-envs"  # a --conda-prefix outside the checkout
    prefix.mkdir(parents=True)
    (prefix / "condaenv.requirements.txt").write_text("\n".join(pip) + "\n")
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "-U", "-r",
                             "condaenv.requirements.txt"], cwd=prefix, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(Requirement(line) for line in pip)  # package requirements only


def test_the_env_holds_every_dependency_the_rules_need_at_versions_the_package_allows():
    """Every runtime dependency of pyproject.toml but Snakemake (which runs the rules, not inside them) is pinned
    in the env, conda's or pip's part, at a version its bound admits."""
    pinned = {}
    for dep in env_file()["dependencies"]:
        if isinstance(dep, dict):
            pinned |= {(r := Requirement(line)).name.lower(): str(r.specifier).removeprefix("==") for line in dep["pip"]}
        elif dep != "pip":
            name, version = dep.split("=", 1)
            pinned[CONDA_TO_PIP.get(name.strip(), name.strip())] = version.strip().lstrip("=")
    needed = [Requirement(d) for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]
    for requirement in needed:
        if requirement.name.startswith("snakemake"):
            continue
        assert requirement.name.lower() in pinned, requirement.name
        assert requirement.specifier.contains(Version(pinned[requirement.name.lower()])), (requirement, pinned)
    assert Version(pinned["python"]) >= Version(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
                                                ["requires-python"].removeprefix(">="))


def test_rules_run_the_checkouts_package_from_any_working_directory(tmp_path):
    """Snakemake started in another folder (-d) with PYTHONPATH pointing elsewhere (as conda would clear it): the
    rule runs the copy's own src/, not the package installed in the environment."""
    workdir = copy_workflow(tmp_path / "checkout")
    download = workdir / "src/trifecta/operations/download.py"
    download.write_text(download.read_text().replace('print(f"{name}: ', 'print(f"the copy\'s {name}: '))
    elsewhere = tmp_path / "elsewhere"
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "nowhere")}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "resources/data/mnist5k.ok", "-s", str(workdir / "Snakefile"), "-d",
         str(elsewhere), "--cores", "1", "--configfile", str(workdir / "workflow/embedded.yaml")],
        env={**env, "PATH": os.pathsep.join([str(make_bin(tmp_path / "bin")), os.path.dirname(sys.executable),
                                             env["PATH"]])},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the copy's mnist5k: 4000 train / 1000 test images" in (elsewhere / "logs/download/mnist5k.log").read_text()
