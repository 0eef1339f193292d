"""The vLLM backend against a fake `vllm` package (no vllm, no GPU needed)."""

import json
import os
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import yaml

import gradual.generation as generation
from gradual.detection import generate_answers
from gradual.errors import InputError
from gradual.generation import GenerationSettings, load_backend, resolve_backend
from gradual.generation.vllm import SAMPLE_BITS, VLLM_LORA_RANKS, cpu_settings, max_lora_rank, sample_seed

SETTINGS = GenerationSettings(max_new_tokens=7, n_samples=3, temperature=0.7, top_k=11, seed=42, batch_size=4)


class FakeCompletion:
    def __init__(self, text):
        self.text = text


class FakeRequestOutput:
    def __init__(self, prompt, texts):
        self.prompt = prompt
        self.outputs = [FakeCompletion(t) for t in texts]


class FakeSamplingParams:
    created = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        FakeSamplingParams.created.append(self)


class FakeLoRARequest:
    def __init__(self, name, int_id, path):
        self.name, self.int_id, self.path = name, int_id, path


class FakeLLM:
    instances = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        FakeLLM.instances.append(self)

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append(
            {"prompts": list(prompts), "params": params, "lora_request": lora_request, "use_tqdm": use_tqdm}
        )
        per_prompt = params if isinstance(params, list) else [params] * len(prompts)
        assert len(per_prompt) == len(prompts)
        outputs = []
        for prompt, p in zip(prompts, per_prompt):
            n = p.kwargs.get("n", 1)
            seed = p.kwargs.get("seed")
            outputs.append(FakeRequestOutput(prompt, [f"{prompt}->{seed}:{i}" for i in range(n)]))
        return outputs


def install_fake_vllm(monkeypatch, cpu: bool, gpu_capability: int = 90):
    FakeLLM.instances.clear()
    FakeSamplingParams.created.clear()
    vllm = types.ModuleType("vllm")
    vllm.LLM = FakeLLM
    vllm.SamplingParams = FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    lora.request = request
    vllm.lora = lora
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(
        is_cpu=lambda: cpu, has_device_capability=lambda capability: not cpu and capability <= gpu_capability
    )
    vllm.platforms = platforms
    for name, module in {"vllm": vllm, "vllm.lora": lora, "vllm.lora.request": request}.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    return vllm


@pytest.fixture
def fake_vllm(monkeypatch):
    """vLLM as on a GPU (one with bf16): the engine options are the backend's and the user's only."""
    import torch

    def initialises_cuda(*args, **kwargs):
        pytest.fail("torch.cuda was asked before vLLM started: CUDA initialised, vLLM's workers must spawn")

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", initialises_cuda)
    return install_fake_vllm(monkeypatch, cpu=False)


@pytest.fixture
def fake_vllm_cpu(monkeypatch):
    """vLLM's CPU build, in an environment that sets none of its variables."""
    from gradual.generation.vllm import ENGINE_ENVIRONMENT

    for name in ENGINE_ENVIRONMENT:
        monkeypatch.setenv(name, "")  # recorded, so that the test's end removes what the backend sets
        monkeypatch.delenv(name)
    return install_fake_vllm(monkeypatch, cpu=True)


def make_backend(tmp_path, adapter_dir=None, engine_options=None, gpus=1):
    from gradual.generation.vllm import VLLMBackend

    return VLLMBackend(tmp_path / "model", SETTINGS, adapter_dir, engine_options, gpus=gpus)


def test_engine_options_without_adapter(fake_vllm, tmp_path):
    backend = make_backend(tmp_path, engine_options={"gpu_memory_utilization": 0.5})
    assert len(FakeLLM.instances) == 1
    assert backend.llm is FakeLLM.instances[0]
    assert backend.llm.kwargs == {
        "model": str(tmp_path / "model"),
        "enable_prefix_caching": True,
        "dtype": "bfloat16",  # model.compute_dtype auto on a GPU with bf16
        "tensor_parallel_size": 1,
        "seed": 42,
        "gpu_memory_utilization": 0.5,
    }
    assert "enable_lora" not in backend.llm.kwargs
    assert backend.lora_request is None
    backend.greedy(["a"])
    backend.open(["a"], [1]).sample([0], range(3))
    assert [call["lora_request"] for call in backend.llm.calls] == [None, None]


def test_no_engine_options(fake_vllm, tmp_path):
    backend = make_backend(tmp_path)
    assert backend.llm.kwargs == {
        "model": str(tmp_path / "model"),
        "enable_prefix_caching": True,
        "dtype": "bfloat16",
        "tensor_parallel_size": 1,
        "seed": 42,
    }


def test_engine_options_may_override_defaults_but_not_model_seed_or_dtype(fake_vllm, tmp_path):
    backend = make_backend(tmp_path, engine_options={"enable_prefix_caching": False})
    assert backend.llm.kwargs["enable_prefix_caching"] is False
    with pytest.raises(ValueError, match=r"generation.vllm must not set \['seed'\]"):
        make_backend(tmp_path, engine_options={"seed": 1})
    with pytest.raises(ValueError, match=r"must not set \['dtype'\].*model.compute_dtype"):
        make_backend(tmp_path, engine_options={"dtype": "float16"})
    with pytest.raises(ValueError, match=r"must not set \['tensor_parallel_size'\].*generation.gpus"):
        make_backend(tmp_path, engine_options={"tensor_parallel_size": 2})


def test_the_engine_is_tensor_parallel_over_the_jobs_gpus(fake_vllm, tmp_path):
    backend = make_backend(tmp_path, gpus=4)
    assert backend.llm.kwargs["tensor_parallel_size"] == 4
    assert backend.describe()["engine_options"]["tensor_parallel_size"] == 4  # recorded with the answers


def test_the_cpu_build_runs_in_the_jobs_process_whatever_its_gpus(fake_vllm_cpu, tmp_path):
    assert "tensor_parallel_size" not in make_backend(tmp_path, gpus=2).llm.kwargs


def test_auto_on_a_gpu_without_bf16_is_float32_asked_of_vllm_not_torch(fake_vllm, monkeypatch, tmp_path):
    from gradual.generation.vllm import VLLMBackend

    install_fake_vllm(monkeypatch, cpu=False, gpu_capability=75)  # a T4: no bf16
    assert VLLMBackend(tmp_path / "model", GenerationSettings(dtype="auto")).llm.kwargs["dtype"] == "float32"


@pytest.mark.parametrize(("compute_dtype", "bf16_cpu", "expected"), [
    ("auto", True, "bfloat16"), ("auto", False, "float32"),
    ("float32", True, "float32"), ("bfloat16", False, "bfloat16"),
])  # fmt: skip
def test_the_engine_runs_in_the_compute_dtype(fake_vllm_cpu, monkeypatch, tmp_path, compute_dtype, bf16_cpu,
                                              expected):  # fmt: skip
    from gradual.generation.vllm import VLLMBackend

    monkeypatch.setattr("gradual.accelerator.native_bf16_cpu", lambda: bf16_cpu)
    settings = GenerationSettings(dtype=compute_dtype)
    assert VLLMBackend(tmp_path / "model", settings).llm.kwargs["dtype"] == expected


def adapter_of_rank(folder, rank):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
    return folder


def test_adapter_enables_lora_on_every_call(fake_vllm, tmp_path):
    adapter = adapter_of_rank(tmp_path / "adapter", 64)
    backend = make_backend(tmp_path, adapter_dir=adapter, engine_options={"max_model_len": 512})
    kwargs = backend.llm.kwargs
    assert kwargs["enable_lora"] is True
    assert kwargs["max_lora_rank"] == 64
    assert kwargs["max_model_len"] == 512
    assert kwargs["model"] == str(tmp_path / "model")
    backend.greedy(["p1", "p2"])
    backend.open(["p1"], [5]).sample([0], range(3))
    backend.greedy(["p3"])
    assert len(backend.llm.calls) == 3
    for call in backend.llm.calls:
        request = call["lora_request"]
        assert isinstance(request, FakeLoRARequest)
        assert request.path == str(adapter)
        assert request.int_id == 1
        assert isinstance(request.name, str) and request.name


@pytest.mark.parametrize("rank, served", [(1, 1), (4, 8), (8, 8), (50, 64), (300, 320), (512, 512)])
def test_max_lora_rank_is_the_smallest_vllm_value_that_holds_the_adapter(rank, served, tmp_path):
    assert max_lora_rank(adapter_of_rank(tmp_path, rank)) == served


def test_an_adapter_above_vllms_largest_rank_is_refused(tmp_path):
    with pytest.raises(InputError, match="LoRA rank 1024 is above 512, the most vLLM serves"):
        max_lora_rank(adapter_of_rank(tmp_path, 1024))


def test_the_config_refuses_a_rank_vllm_cannot_serve():
    schema = yaml.safe_load((Path(__file__).parents[2] / "schemas" / "config.schema.yaml").read_text())
    assert schema["properties"]["training"]["properties"]["lora_rank"]["maximum"] == VLLM_LORA_RANKS[-1]


def test_greedy(fake_vllm, tmp_path):
    backend = make_backend(tmp_path)
    prompts = ["Q: x\nA:", "Q: y\nA:", "Q: z\nA:"]
    out = backend.greedy(prompts)
    assert out == [f"{p}->None:0" for p in prompts]
    assert len(backend.llm.calls) == 1
    call = backend.llm.calls[0]
    assert call["prompts"] == prompts
    params = call["params"]
    assert isinstance(params, FakeSamplingParams)
    assert params.kwargs == {"temperature": 0.0, "max_tokens": 7, "stop": ["\n"]}
    assert len(FakeSamplingParams.created) == 1


def test_sample_sends_one_request_per_prompt_seeded_by_prompt_and_wave(fake_vllm, tmp_path):
    backend = make_backend(tmp_path)
    prompts = ["first", "second", "third"]
    seeds = [10, 3, 99]
    session = backend.open(prompts, seeds)
    out = session.sample([2, 0], range(3))
    wave_seeds = [99 << SAMPLE_BITS, 10 << SAMPLE_BITS]
    assert out == [[f"{p}->{s}:{i}" for i in range(3)] for p, s in zip(["third", "first"], wave_seeds)]
    session.sample([1], range(3, 5))  # a later wave: n = 2, its own seed
    assert len(backend.llm.calls) == 2
    first, later = backend.llm.calls
    assert first["prompts"] == ["third", "first"] and later["prompts"] == ["second"]
    assert isinstance(first["params"], list) and len(first["params"]) == 2
    for p, seed in zip(first["params"], wave_seeds):
        assert p.kwargs == {"n": 3, "temperature": 0.7, "top_k": 11, "seed": seed, "max_tokens": 7, "stop": ["\n"]}
    assert later["params"][0].kwargs["n"] == 2 and later["params"][0].kwargs["seed"] == (3 << SAMPLE_BITS) + 3


def test_a_samples_seed_is_the_same_in_any_wave_and_no_two_prompts_share_one():
    # vLLM seeds child i of a request seeded s with s + i: the seeds a wave uses are its request seed onwards
    def wave_seeds(prompt_seed, samples):
        return [sample_seed(prompt_seed, samples.start) + i for i in range(len(samples))]

    one_wave = wave_seeds(7, range(16))
    assert wave_seeds(7, range(4)) + wave_seeds(7, range(4, 16)) == one_wave  # sampling until correct
    assert one_wave == [sample_seed(7, j) for j in range(16)]
    # adjacent prompt seeds (the overlap seed + i would give: 7 + 1 = 8) draw from disjoint seeds
    prompt_seeds = [7, 8, 9, 2**32 - 1, 0]
    drawn = [seed for p in prompt_seeds for seed in wave_seeds(p, range(16))]
    assert len(set(drawn)) == len(drawn)
    with pytest.raises(ValueError, match="sample index"):
        sample_seed(7, 1 << SAMPLE_BITS)


def test_the_cpu_build_gets_what_it_needs_where_the_user_left_it_unset(fake_vllm_cpu, tmp_path):
    backend = make_backend(tmp_path, engine_options={"max_model_len": 512})
    kwargs = backend.llm.kwargs
    assert kwargs["enable_chunked_prefill"] is False and kwargs["kv_cache_memory_bytes"] == 2 * 2**30
    assert kwargs["enforce_eager"] is True
    assert kwargs["max_model_len"] == 512 and kwargs["enable_prefix_caching"] is True
    import torch

    expected = {
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "OMP_NUM_THREADS": str(torch.get_num_threads()),
        "VLLM_CPU_OMP_THREADS_BIND": "nobind",
    }
    assert backend.environment == expected and all(os.environ[k] == v for k, v in expected.items())
    assert backend.describe()["environment"] == expected and backend.describe()["device"] == "cpu"


def test_the_users_own_cpu_settings_win(monkeypatch):
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "8")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    options, environment = cpu_settings({"enable_chunked_prefill": True, "enforce_eager": False}, threads=2)
    assert options == {}  # as the user asked; the KV cache from VLLM_CPU_KVCACHE_SPACE
    assert "OMP_NUM_THREADS" not in environment and environment["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE")
    options, _ = cpu_settings({"kv_cache_memory_bytes": 2**29}, threads=2)
    assert options == {"enable_chunked_prefill": False, "enforce_eager": True}


def test_on_a_gpu_the_engine_options_are_the_backends_and_the_users_only(fake_vllm, tmp_path):
    backend = make_backend(tmp_path)
    assert "enable_chunked_prefill" not in backend.llm.kwargs and "VLLM_ENABLE_V1_MULTIPROCESSING" not in os.environ
    assert backend.describe()["device"] == "gpu"


def test_detect_submits_a_whole_shard_per_request_list(fake_vllm, tmp_path):
    """Greedy for every prompt in one call, then one call per sampling wave: the engine batches them."""
    backend = make_backend(tmp_path)
    prompts = pd.DataFrame({"question_id": ["q1", "q1", "q2", "q2"], "prompt_index": [0, 1, 0, 1]})
    prompts["prompt"] = prompts["question_id"] + "-p" + prompts["prompt_index"].astype(str)
    result = generate_answers(backend, prompts, seed=0, golds={"q1": ["x"], "q2": ["y"]}, match_mode="substring")
    calls = backend.llm.calls
    assert calls[0]["prompts"] == prompts["prompt"].tolist()
    assert all(call["prompts"] == prompts["prompt"].tolist() for call in calls[1:])  # nothing right: every wave
    assert [len(call["params"]) for call in calls[1:]] == [4, 4]  # a first quarter (n = 1), then the rest (n = 2)
    assert [call["params"][0].kwargs["n"] for call in calls[1:]] == [1, 2]
    assert (result["mode"] == "sample").sum() == 4 * 3


def test_load_backend_vllm(fake_vllm, tmp_path):
    from gradual.generation.vllm import VLLMBackend

    backend = load_backend("vllm", tmp_path / "m", SETTINGS, engine_options={"gpu_memory_utilization": 0.3}, gpus=2)
    assert isinstance(backend, VLLMBackend)
    assert backend.llm.kwargs["gpu_memory_utilization"] == 0.3
    assert backend.llm.kwargs["tensor_parallel_size"] == 2
    assert backend.llm.kwargs["model"] == str(tmp_path / "m")
    assert backend.settings == SETTINGS


# resolve_backend


@pytest.mark.parametrize("name", ["hf", "vllm"])
def test_resolve_named(name, monkeypatch):
    monkeypatch.setattr(generation, "find_spec", lambda n: pytest.fail("find_spec must not be consulted"))
    assert resolve_backend(name) == name


@pytest.mark.parametrize("name", ["tgi", "HF", ""])
def test_resolve_unknown(name):
    with pytest.raises(ValueError, match="generation.backend"):
        resolve_backend(name)


def fake_torch(monkeypatch, cuda):
    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(is_available=lambda: cuda)
    monkeypatch.setitem(sys.modules, "torch", torch)


def test_auto_without_vllm(monkeypatch):
    asked = []
    monkeypatch.setattr(generation, "find_spec", lambda n: asked.append(n) or None)
    fake_torch(monkeypatch, cuda=True)
    assert resolve_backend("auto") == "hf"
    assert asked == ["vllm"]


def test_auto_with_vllm_and_cuda(monkeypatch):
    monkeypatch.setattr(generation, "find_spec", lambda n: object() if n == "vllm" else None)
    fake_torch(monkeypatch, cuda=True)
    assert resolve_backend("auto") == "vllm"


def test_auto_with_vllm_without_cuda(monkeypatch):
    monkeypatch.setattr(generation, "find_spec", lambda n: object() if n == "vllm" else None)
    fake_torch(monkeypatch, cuda=False)
    assert resolve_backend("auto") == "hf"


def test_load_backend_auto_picks_vllm(fake_vllm, monkeypatch, tmp_path):
    from gradual.generation.vllm import VLLMBackend

    monkeypatch.setattr(generation, "find_spec", lambda n: object())
    fake_torch(monkeypatch, cuda=True)
    assert isinstance(load_backend("auto", tmp_path, SETTINGS), VLLMBackend)


def test_settings_from_the_generation_config():
    config = {
        "backend": "hf",
        "max_new_tokens": 9,
        "n_samples": 3,
        "temperature": 0.7,
        "top_k": 5,
        "seed": 4,
        "batch_size": 8,
        "shards": 2,
        "sample_all": False,
        "vllm": {},
        "dtype": "bfloat16",
    }
    assert GenerationSettings.from_config(config) == GenerationSettings(
        max_new_tokens=9, n_samples=3, temperature=0.7, top_k=5, seed=4, batch_size=8, dtype="bfloat16"
    )


def test_batch_invariance_is_asked_of_vllm_on_a_gpu_and_refused_on_the_cpu_build(monkeypatch, tmp_path):
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "")  # recorded, so that the test's end removes what the backend sets
    monkeypatch.delenv("VLLM_BATCH_INVARIANT")
    install_fake_vllm(monkeypatch, cpu=False)
    # vLLM's modules read the variable as they load: once vllm is imported, setting it would do nothing
    with pytest.raises(InputError, match="vLLM was imported before it was set"):
        load_backend("vllm", tmp_path / "m", SETTINGS, batch_invariant=True)
    monkeypatch.delitem(sys.modules, "vllm")  # as in a generate job, where nothing imports vllm before the backend
    original_import = __import__

    def import_fake(name, *args, **kwargs):
        if name == "vllm" and "vllm" not in sys.modules:
            assert os.environ["VLLM_BATCH_INVARIANT"] == "1"  # set before vLLM loads
            install_fake_vllm(monkeypatch, cpu=False)
        return original_import(name, *args, **kwargs)

    monkeypatch.setattr("builtins.__import__", import_fake)
    backend = load_backend("vllm", tmp_path / "m", SETTINGS, batch_invariant=True)
    assert backend.environment["VLLM_BATCH_INVARIANT"] == "1"
    monkeypatch.undo()
    monkeypatch.setenv("VLLM_BATCH_INVARIANT", "1")
    install_fake_vllm(monkeypatch, cpu=True)
    with pytest.raises(InputError, match="batch_invariant needs vLLM on an NVIDIA GPU"):
        load_backend("vllm", tmp_path / "m", SETTINGS, batch_invariant=True)


def test_a_torchvision_built_for_another_torch_is_named_with_its_fix(tmp_path, monkeypatch):
    from gradual.generation.vllm import check_torchvision

    package = tmp_path / "torchvision"
    package.mkdir()
    (package / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "torchvision", raising=False)
    with pytest.raises(InputError, match="operator torchvision::nms does not exist.*pip uninstall torchvision"):
        check_torchvision()
