"""The vLLM backend: prefix caching for the shared exemplars, one seeded request per prompt."""

from pathlib import Path

from gradual.generation import GenerationSettings

ANSWER_STOP = ["\n"]
MAX_LORA_RANK = 64


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
            options.update(enable_lora=True, max_lora_rank=MAX_LORA_RANK)
        self.llm = LLM(model=str(model_dir), seed=settings.seed, **{**options, **engine_options})
        self.lora_request = None
        if adapter_dir:
            from vllm.lora.request import LoRARequest

            self.lora_request = LoRARequest("adapter", 1, str(adapter_dir))

    def _run(self, prompts: list[str], params) -> list:
        return self.llm.generate(prompts, params, lora_request=self.lora_request, use_tqdm=True)

    def greedy(self, prompts: list[str]) -> list[str]:
        from vllm import SamplingParams

        params = SamplingParams(temperature=0.0, max_tokens=self.settings.max_new_tokens, stop=ANSWER_STOP)
        return [request.outputs[0].text for request in self._run(prompts, params)]

    def sample(self, prompts: list[str], seeds: list[int]) -> list[list[str]]:
        from vllm import SamplingParams

        settings = self.settings
        params = [
            SamplingParams(
                n=settings.n_samples,
                temperature=settings.temperature,
                top_k=settings.top_k,
                seed=seed,
                max_tokens=settings.max_new_tokens,
                stop=ANSWER_STOP,
            )
            for seed in seeds
        ]
        return [[completion.text for completion in request.outputs] for request in self._run(prompts, params)]
