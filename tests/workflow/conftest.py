import pytest
from workflow import ROOT, Run, copy_workflow


@pytest.fixture
def workdir(tmp_path):
    """A fresh working directory with the project's configs, so results/ and logs/ land in a temporary folder."""
    for name in ("configs", "config.yaml"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """One full local run of configs/test.yaml in a working copy of the workflow, with fresh shared
    resources so that prepare_model runs for real; shared by every test that needs a finished run."""
    base = tmp_path_factory.mktemp("run")
    finished = Run(copy_workflow(base / "copy"), base / "shared-resources")
    finished.snakemake()
    return finished
