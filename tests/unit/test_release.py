"""What a release carries: one version (the package's) that CITATION.cff and the changelog repeat, a licence,
citation metadata naming the paper, and dependency bounds that match the cluster profile."""

import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

import trifecta

REPO = Path(__file__).resolve().parents[2]


def test_one_version_repeated_where_it_must_be():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "trifecta.__version__"}
    assert yaml.safe_load((REPO / "CITATION.cff").read_text())["version"] == trifecta.__version__
    newest = re.search(r"^## (\S+) \(\d{4}-\d\d-\d\d\)$", (REPO / "CHANGELOG.md").read_text(), re.M)
    assert newest and newest.group(1) == trifecta.__version__
    assert "## 0.1.0 (" in (REPO / "CHANGELOG.md").read_text()


def test_licence_and_citation():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert pyproject["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT"
    paper = cff["preferred-citation"]
    assert [a["family-names"] for a in paper["authors"]] == ["Dooms", "Tsang", "Oramas"]
    assert {"type": "other", "value": "arXiv:2311.18130"}.items() <= paper["identifiers"][0].items()
    assert cff["references"] == [paper]
    assert "2311.18130" in pyproject["urls"]["Paper"]


def test_the_slurm_plugin_is_bounded_to_the_release_the_profile_is_written_for():
    deps = {(r := Requirement(d)).name: r.specifier
            for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    plugin = deps["snakemake-executor-plugin-slurm"]
    assert "2.8.0" in plugin and "2.9.0" not in plugin and "1.9.0" not in plugin
    assert "plugin 2.8.0" in (REPO / "slurm/config.yaml").read_text()
