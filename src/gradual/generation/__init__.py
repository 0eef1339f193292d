"""Generation behind one small interface, with two backends: `hf` (transformers, CPU) and `vllm` (GPU).

Both take the same prompts and settings and return the raw continuation of each prompt; the
answer line is cut and matched by `gradual.matching`, so the backends cannot disagree on that.
"""

from dataclasses import dataclass, fields
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol

BACKENDS = ("hf", "vllm")


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 16
    n_samples: int = 16
    temperature: float = 0.5
    top_k: int = 40
    seed: int = 0
    batch_size: int = 32

    @classmethod
    def from_config(cls, generation: dict) -> "GenerationSettings":
        """The settings from the config's `generation` section (which has more keys than these)."""
        return cls(**{field.name: generation[field.name] for field in fields(cls)})


class Backend(Protocol):
    def greedy(self, prompts: list[str]) -> list[str]:
        """One greedy (T = 0) continuation per prompt, stopped at the end of the answer line."""

    def sample(self, prompts: list[str], seeds: list[int]) -> list[list[str]]:
        """`n_samples` sampled continuations per prompt; prompt i draws from `seeds[i]` alone."""


def resolve_backend(name: str) -> str:
    """`auto` is vllm where CUDA and vllm are both present, hf everywhere else."""
    if name != "auto":
        if name not in BACKENDS:
            raise ValueError(f"generation.backend must be auto or one of {BACKENDS}, not {name!r}")
        return name
    if find_spec("vllm") is None:
        return "hf"
    import torch

    return "vllm" if torch.cuda.is_available() else "hf"


def load_backend(
    name: str,
    model_dir: str | Path,
    settings: GenerationSettings,
    adapter_dir: str | Path | None = None,
    engine_options: dict | None = None,
) -> Backend:
    name = resolve_backend(name)
    if name == "vllm":
        from gradual.generation.vllm import VLLMBackend

        return VLLMBackend(model_dir, settings, adapter_dir, engine_options or {})
    from gradual.generation.hf import HFBackend

    return HFBackend(model_dir, settings, adapter_dir)
