"""Generation behind one small interface, with two backends: `hf` (transformers, CPU) and `vllm` (GPU).

Both take the same prompts and settings and return the raw continuation of each prompt; the
answer line is cut and matched by `gradual.matching`, so the backends cannot disagree on that.
"""

from dataclasses import dataclass, fields
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol

import pandas as pd

from gradual.config import DEFAULTS
from gradual.errors import InputError

BACKENDS = ("hf", "vllm")


@dataclass(frozen=True)
class GenerationSettings:
    """A generation job's values; those it is not given are the config's defaults (gradual.config)."""

    max_new_tokens: int = DEFAULTS["generation"]["max_new_tokens"]
    n_samples: int = DEFAULTS["generation"]["n_samples"]
    temperature: float = DEFAULTS["generation"]["temperature"]
    top_k: int = DEFAULTS["generation"]["top_k"]
    seed: int = DEFAULTS["generation"]["seed"]
    batch_size: int = DEFAULTS["generation"]["batch_size"]
    dtype: str = DEFAULTS["model"]["compute_dtype"]  # gradual.accelerator.DTYPES: the dtype the model runs in

    @classmethod
    def from_config(cls, generation: dict) -> "GenerationSettings":
        """The settings among a job's generation values (a greedy-only job has no sampling values:
        they keep their defaults, unused)."""
        return cls(**{field.name: generation[field.name] for field in fields(cls) if field.name in generation})


class Session(Protocol):
    """A chunk of prompts opened for generation; where the backend can, each is encoded once."""

    def greedy(self) -> list[str]:
        """One greedy (T = 0) continuation per prompt, stopped at the end of the answer line."""

    def sample(self, rows: list[int], samples: range) -> list[list[str]]:
        """Sampled continuations `samples` (indices) of the prompts at `rows`, each drawn from its
        prompt's seed alone."""


class Backend(Protocol):
    settings: GenerationSettings
    chunk_prompts: float  # how many prompts `generate_answers` opens at a time

    def open(self, prompts: list[str], seeds: list[int] | None = None, prefixes: list[str] | None = None) -> Session:
        """The prompts, with a seed each for sampling and, optionally, the shared start of each."""

    def greedy(self, prompts: list[str]) -> list[str]:
        """Greedy continuations of any number of prompts (evaluation)."""

    def describe(self) -> dict:
        """What generated the answers (backend, versions, device, dtype, engine settings), for provenance."""


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
    batch_invariant: bool = False,
    gpus: int = 1,
) -> Backend:
    """The backend `name` (or auto's pick); `gpus` is vLLM's tensor parallel size (hf runs on one device)."""
    name = resolve_backend(name)
    if name == "vllm":
        from gradual.generation.vllm import VLLMBackend

        return VLLMBackend(model_dir, settings, adapter_dir, engine_options or {}, batch_invariant, gpus)
    from gradual.generation.hf import HFBackend

    return HFBackend(model_dir, settings, adapter_dir)


def context_length(model_dir: str | Path, engine_options: dict | None = None) -> int | None:
    """Tokens the model attends to: its position limit, or vLLM's `max_model_len` where smaller."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(model_dir)
    limits = [getattr(config, name, None) for name in ("max_position_embeddings", "n_positions")]
    limits.append((engine_options or {}).get("max_model_len"))
    limits = [int(limit) for limit in limits if limit]
    return min(limits) if limits else None


def check_prompt_lengths(prompts: pd.DataFrame, tokenizer, limit: int | None, max_new_tokens: int) -> None:
    """Refuse, before any generation, a prompt that leaves no room for its answer in the context,
    naming the question (a model would silently truncate it or fail hours into a run)."""
    if limit is None or prompts.empty:
        return
    lengths = pd.Series([len(ids) for ids in tokenizer(prompts["prompt"].tolist())["input_ids"]], index=prompts.index)
    too_long = lengths + max_new_tokens > limit
    if too_long.any():
        first = too_long.idxmax()
        raise InputError(
            f"question {prompts.at[first, 'question_id']}: prompt {prompts.at[first, 'prompt_index']} is "
            f"{lengths[first]} tokens, which with generation.max_new_tokens = {max_new_tokens} exceeds the model's "
            f"context of {limit} tokens ({int(too_long.sum())} of {len(prompts)} prompts are too long); "
            "shorten the question or lower detection.k_shot"
        )
