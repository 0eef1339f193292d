"""The transformers backend on the real SmolLM2-135M-Instruct, on CPU."""

import pandas as pd
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual.errors import InputError
from gradual.generation import GenerationSettings, check_prompt_lengths, context_length
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
        reference = model.generate(
            input_ids=encoded["input_ids"],
            attention_mask=encoded["attention_mask"],  # not token_type_ids, which transformers 4 tokenizers add
            max_new_tokens=12,
            do_sample=False,
            pad_token_id=tokenizer.eos_token_id,
        )
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


def test_context_length_is_the_models_or_vllms_if_smaller(smollm2):
    assert context_length(smollm2) == 8192  # SmolLM2's max_position_embeddings
    assert context_length(smollm2, {"max_model_len": 2048}) == 2048
    assert context_length(smollm2, {"max_model_len": 100_000}) == 8192


def test_a_prompt_too_long_for_the_context_is_refused_naming_its_question(smollm2):
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    prompts = pd.DataFrame(
        {
            "question_id": ["P1.train.0", "P1.train.7"],
            "prompt_index": [0, 3],
            "prompt": [PROMPTS[0], PROMPTS[0] + " x" * 60],
        }
    )
    long_tokens = len(tokenizer(prompts["prompt"].iloc[1]).input_ids)
    check_prompt_lengths(prompts, tokenizer, limit=long_tokens + 16, max_new_tokens=16)  # just fits
    with pytest.raises(InputError) as raised:
        check_prompt_lengths(prompts, tokenizer, limit=long_tokens + 15, max_new_tokens=16)
    assert str(raised.value) == (
        f"question P1.train.7: prompt 3 is {long_tokens} tokens, which with generation.max_new_tokens = 16 exceeds "
        f"the model's context of {long_tokens + 15} tokens (1 of 2 prompts are too long); shorten the question or lower detection.k_shot"
    )
