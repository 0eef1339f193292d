"""Provenance: versions, the project's commit, and metadata carried inside Parquet files."""

import subprocess
import sys

import pandas as pd

from gradual.io import read_parquet_metadata, write_parquet
from gradual.provenance import PACKAGES, project_commit, versions


def test_versions_name_python_and_every_package():
    found = versions()
    assert set(found) == {"python", *PACKAGES}
    assert found["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert found["pandas"] == pd.__version__


def test_project_commit_and_uncommitted_changes(tmp_path):
    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    assert project_commit(tmp_path) is None  # not a git working copy
    git("init", "-q")
    (tmp_path / "Snakefile").write_text("rule all:\n")
    git("add", "Snakefile")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    head = git("rev-parse", "HEAD").strip()
    assert project_commit(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
    assert project_commit(tmp_path) == {"commit": head, "dirty": True}


def test_metadata_travels_inside_a_parquet_file_and_changes_nothing_else(tmp_path):
    frame = pd.DataFrame({"question_id": ["a", "b"], "answers": [["x"], ["y", "z"]]})
    write_parquet(frame, tmp_path / "plain.parquet")
    write_parquet(frame, tmp_path / "with.parquet", metadata={"backend": "hf", "dtype": "float32"})
    frame.to_parquet(tmp_path / "pandas.parquet", index=False)
    assert read_parquet_metadata(tmp_path / "with.parquet") == {"backend": "hf", "dtype": "float32"}
    assert read_parquet_metadata(tmp_path / "plain.parquet") is None
    assert (tmp_path / "plain.parquet").read_bytes() == (tmp_path / "pandas.parquet").read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "with.parquet"), pd.read_parquet(tmp_path / "plain.parquet")
    )
