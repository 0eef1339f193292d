"""The transformers backend on the real SmolLM2-135M-Instruct, on CPU."""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.matching import answer_line
from gradual.prompts import PromptFormat

FORMAT = PromptFormat()
EXEMPLARS = [
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
]
QUESTIONS = [
    "What is the capital of France?",
    "What is the capital of Spain?",
    "What is the capital of Burkina Faso?",
    "What is the capital of the province of Pichincha in the Republic of Ecuador?",
    "What is the capital of Peru?",
]
PROMPTS = [FORMAT.prompt(EXEMPLARS, q) for q in QUESTIONS]


@pytest.fixture(scope="module")
def backend(smollm2):
    return HFBackend(smollm2, GenerationSettings(max_new_tokens=12, n_samples=4, batch_size=8, seed=0))


def test_greedy_answers_a_fact_the_model_knows_and_stops_at_the_line_end(backend):
    outputs = backend.greedy(PROMPTS)
    assert answer_line(outputs[0]) == "Paris"
    for text in outputs:
        assert "\n" not in text.rstrip("\n")  # nothing generated past the answer line


def test_greedy_matches_transformers_generate(backend, smollm2):
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32).eval()
    ours = backend.greedy(PROMPTS)
    for prompt, text in zip(PROMPTS, ours):
        encoded = tokenizer(prompt, return_tensors="pt")
        reference = model.generate(**encoded, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        expected = tokenizer.decode(reference[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        assert answer_line(text) == answer_line(expected)


def test_greedy_does_not_depend_on_batch_size(backend, smollm2):
    single = HFBackend(smollm2, GenerationSettings(max_new_tokens=12, batch_size=1))
    assert [answer_line(t) for t in single.greedy(PROMPTS)] == [answer_line(t) for t in backend.greedy(PROMPTS)]


def test_samples_are_seeded_per_prompt_whatever_the_batch(backend, smollm2):
    seeds = [11, 12, 13, 14, 15]
    first = backend.sample(PROMPTS, seeds)
    assert [len(s) for s in first] == [4] * 5
    assert backend.sample(PROMPTS, seeds) == first
    narrow = HFBackend(smollm2, GenerationSettings(max_new_tokens=12, n_samples=4, batch_size=4, seed=0))
    assert narrow.sample(PROMPTS[2:4], seeds[2:4]) == first[2:4]
    other = backend.sample(PROMPTS, [s + 100 for s in seeds])
    assert other != first


def test_sampling_at_temperature_varies_on_an_uncertain_question(smollm2):
    hot = HFBackend(smollm2, GenerationSettings(max_new_tokens=12, n_samples=16, temperature=1.0, top_k=40))
    answers = {answer_line(t) for t in hot.sample([PROMPTS[3]], [0])[0]}
    assert len(answers) > 1


def test_top_k_one_is_greedy(backend, smollm2):
    top1 = HFBackend(smollm2, GenerationSettings(max_new_tokens=12, n_samples=3, top_k=1, temperature=0.5))
    greedy = [answer_line(t) for t in backend.greedy(PROMPTS)]
    for per_prompt, expected in zip(top1.sample(PROMPTS, [1, 2, 3, 4, 5]), greedy):
        assert {answer_line(t) for t in per_prompt} == {expected}
