"""The vLLM backend: prefix caching for the shared exemplars, one seeded request per prompt."""

import json
from pathlib import Path

from gradual.errors import InputError
from gradual.generation import GenerationSettings
from gradual.seeding import stable_seed

ANSWER_STOP = ["\n"]
# The values vLLM's LoRAConfig.max_lora_rank accepts (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def max_lora_rank(adapter_dir: str | Path) -> int:
    """The smallest rank vLLM accepts as `max_lora_rank` that holds the adapter's own rank."""
    rank = int(json.loads((Path(adapter_dir) / "adapter_config.json").read_text())["r"])
    fitting = [value for value in VLLM_LORA_RANKS if value >= rank]
    if not fitting:
        raise InputError(f"{adapter_dir}: LoRA rank {rank} is above {VLLM_LORA_RANKS[-1]}, the most vLLM serves")
    return fitting[0]


class VLLMBackend:
    def __init__(
        self,
        model_dir: str | Path,
        settings: GenerationSettings,
        adapter_dir: str | Path | None = None,
        engine_options: dict | None = None,
    ):
        from vllm import LLM

        self.settings = settings
        engine_options = dict(engine_options or {})
        fixed = {"model", "seed"} & set(engine_options)
        if fixed:
            raise ValueError(f"generation.vllm must not set {sorted(fixed)}: they come from model and generation.seed")
        options = {"enable_prefix_caching": True}
        if adapter_dir:
            options.update(enable_lora=True, max_lora_rank=max_lora_rank(adapter_dir))
        self.engine_options = {"model": str(model_dir), "seed": settings.seed, **options, **engine_options}
        self.llm = LLM(**self.engine_options)
        self.lora_request = None
        if adapter_dir:
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("adapter", 1, str(adapter_dir))

    def describe(self) -> dict:
        """vLLM's greedy outputs can depend on how requests are batched: with the engine options and
        versions recorded here, and the same shard (same prompts in the same order), a run repeats."""
        import vllm

        model_config = getattr(self.llm, "model_config", None)  # LLM.model_config: the dtype vLLM resolved
        return {
            "backend": "vllm",
            "vllm": getattr(vllm, "__version__", None),
            "engine_options": self.engine_options,
            "dtype": str(model_config.dtype).removeprefix("torch.") if model_config else None,
        }

    chunk_prompts = float("inf")  # a whole shard per request list: the engine batches and caches it

    def _run(self, prompts: list[str], params) -> list:
        return self.llm.generate(prompts, params, lora_request=self.lora_request, use_tqdm=True)

    def open(self, prompts: list[str], seeds: list[int] | None = None, prefixes: list[str] | None = None):
        """Prefixes need no help here: the engine's prefix cache finds them."""
        return VLLMSession(self, prompts, seeds)

    def greedy(self, prompts: list[str]) -> list[str]:
        return self.open(prompts).greedy()


class VLLMSession:
    """One request list per call: all greedy prompts of a shard, then each wave of samples."""

    def __init__(self, backend: VLLMBackend, prompts: list[str], seeds: list[int] | None):
        self.backend, self.prompts, self.seeds = backend, prompts, seeds

    def greedy(self) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=self.backend.settings.max_new_tokens, stop=ANSWER_STOP)
        return [request.outputs[0].text for request in self.backend._run(self.prompts, params)]

    def sample(self, rows: list[int], samples: range) -> list[list[str]]:
        """One request with `n = len(samples)` per prompt, seeded by (prompt seed, first sample): a
        wave is reproducible, though, unlike the hf sampler, not the same draws as one longer request."""
        from vllm import SamplingParams

        settings = self.backend.settings
        params = [
            SamplingParams(
                n=len(samples),
                temperature=settings.temperature,
                top_k=settings.top_k,
                seed=stable_seed(self.seeds[row], samples.start),
                max_tokens=settings.max_new_tokens,
                stop=ANSWER_STOP,
            )
            for row in rows
        ]
        requests = self.backend._run([self.prompts[row] for row in rows], params)
        return [[completion.text for completion in request.outputs] for request in requests]
