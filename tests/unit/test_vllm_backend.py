"""The vLLM backend against a fake `vllm` package (no vllm, no GPU needed)."""

import json
import sys
import types

import pandas as pd
import pytest

import gradual.generation as generation
from gradual.detection import detect
from gradual.errors import InputError
from gradual.generation import GenerationSettings, load_backend, resolve_backend
from gradual.generation.vllm import max_lora_rank
from gradual.seeding import stable_seed

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


@pytest.fixture
def fake_vllm(monkeypatch):
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
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request)
    return vllm


def make_backend(tmp_path, adapter_dir=None, engine_options=None):
    from gradual.generation.vllm import VLLMBackend

    return VLLMBackend(tmp_path / "model", SETTINGS, adapter_dir, engine_options)


def test_engine_options_without_adapter(fake_vllm, tmp_path):
    backend = make_backend(tmp_path, engine_options={"gpu_memory_utilization": 0.5})
    assert len(FakeLLM.instances) == 1
    assert backend.llm is FakeLLM.instances[0]
    assert backend.llm.kwargs == {
        "model": str(tmp_path / "model"),
        "enable_prefix_caching": True,
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
    assert backend.llm.kwargs == {"model": str(tmp_path / "model"), "enable_prefix_caching": True, "seed": 42}


def test_engine_options_may_override_defaults_but_not_model_or_seed(fake_vllm, tmp_path):
    backend = make_backend(tmp_path, engine_options={"enable_prefix_caching": False})
    assert backend.llm.kwargs["enable_prefix_caching"] is False
    with pytest.raises(ValueError, match=r"generation.vllm must not set \['seed'\]"):
        make_backend(tmp_path, engine_options={"seed": 1})


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
    wave_seeds = [stable_seed(99, 0), stable_seed(10, 0)]
    assert out == [[f"{p}->{s}:{i}" for i in range(3)] for p, s in zip(["third", "first"], wave_seeds)]
    session.sample([1], range(3, 5))  # a later wave: n = 2, its own seed
    assert len(backend.llm.calls) == 2
    first, later = backend.llm.calls
    assert first["prompts"] == ["third", "first"] and later["prompts"] == ["second"]
    assert isinstance(first["params"], list) and len(first["params"]) == 2
    for p, seed in zip(first["params"], wave_seeds):
        assert p.kwargs == {"n": 3, "temperature": 0.7, "top_k": 11, "seed": seed, "max_tokens": 7, "stop": ["\n"]}
    assert later["params"][0].kwargs["n"] == 2 and later["params"][0].kwargs["seed"] == stable_seed(3, 3)


def test_detect_submits_a_whole_shard_per_request_list(fake_vllm, tmp_path):
    """Greedy for every prompt in one call, then one call per sampling wave: the engine batches them."""
    backend = make_backend(tmp_path)
    prompts = pd.DataFrame({"question_id": ["q1", "q1", "q2", "q2"], "prompt_index": [0, 1, 0, 1]})
    prompts["prompt"] = prompts["question_id"] + "-p" + prompts["prompt_index"].astype(str)
    result = detect(backend, prompts, seed=0, golds={"q1": ["x"], "q2": ["y"]}, match_mode="substring")
    calls = backend.llm.calls
    assert calls[0]["prompts"] == prompts["prompt"].tolist()
    assert all(call["prompts"] == prompts["prompt"].tolist() for call in calls[1:])  # nothing right: every wave
    assert [len(call["params"]) for call in calls[1:]] == [4, 4]  # a first quarter (n = 1), then the rest (n = 2)
    assert [call["params"][0].kwargs["n"] for call in calls[1:]] == [1, 2]
    assert (result["mode"] == "sample").sum() == 4 * 3


def test_load_backend_vllm(fake_vllm, tmp_path):
    from gradual.generation.vllm import VLLMBackend

    backend = load_backend("vllm", tmp_path / "m", SETTINGS, engine_options={"gpu_memory_utilization": 0.3})
    assert isinstance(backend, VLLMBackend)
    assert backend.llm.kwargs["gpu_memory_utilization"] == 0.3
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
    }
    assert GenerationSettings.from_config(config) == GenerationSettings(
        max_new_tokens=9, n_samples=3, temperature=0.7, top_k=5, seed=4, batch_size=8
    )
