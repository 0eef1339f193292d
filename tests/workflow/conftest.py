import pytest

from workflow import ROOT


@pytest.fixture
def workdir(tmp_path):
    """A fresh working directory with the project's configs, so results/ and logs/ land in a temporary folder."""
    for name in ("configs", "config.yaml"):
        (tmp_path / name).symlink_to(ROOT / name)
    return tmp_path
