"""Fixtures for whole-workflow tests; the helpers are in smk.py."""

import pytest

from tests.workflow.smk import copy_workflow, make_bin


@pytest.fixture
def workflow_copy(tmp_path):
    """A fresh copy of the workflow with the paper's config.yaml, and a bin folder with a fake scontrol."""
    return copy_workflow(tmp_path / "wf"), make_bin(tmp_path / "bin")
