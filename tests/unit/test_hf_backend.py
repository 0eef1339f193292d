"""The transformers backend on the real SmolLM2-135M-Instruct, on CPU.

The checks that ask for equal answers across batch sizes, waves, shards and shared prefixes run in
float32 (`EXACT`), where the answers of a prompt do not depend on the shape of its batch; bfloat16,
where they may at near ties, is checked against `generate` in test_model_families."""

from dataclasses import replace

import pandas as pd
import pytest
import torch
from scipy.stats import chisquare, kstest
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual import SAMPLE_DATASET
from gradual.categories import assign_categories
from gradual.dataset import prepare, read_entityquestions
from gradual.detection import generate_answers, score
from gradual.errors import InputError
from gradual.generation import GenerationSettings, check_prompt_lengths, context_length
from gradual.generation.hf import HFBackend, counter_uniforms
from gradual.matching import answer_line
from gradual.prompts import PromptFormat, build_prompts

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
EXACT = "float32"


@pytest.fixture(scope="module")
def backend(smollm2):
    return HFBackend(smollm2, GenerationSettings(max_new_tokens=12, n_samples=4, batch_size=8, seed=0, dtype=EXACT))


def test_greedy_answers_a_fact_the_model_knows_and_stops_at_the_line_end(backend):
    outputs = backend.greedy(PROMPTS)
    assert answer_line(outputs[0]) == "Paris"
    for text in outputs:
        assert "\n" not in text.rstrip("\n")  # nothing generated past the answer line


def test_the_output_layer_gets_the_last_positions_contiguous(smollm2):
    """torch multiplies a strided slice of hidden states with a frozen bfloat16 weight (a merged
    adapter's) by copying the weight once per row, gigabytes for a batch: the backend hands the
    output layer a contiguous copy of the last positions, once however often it is wrapped."""
    backend = HFBackend(smollm2, GenerationSettings(max_new_tokens=2, dtype="bfloat16"))
    backend.model.requires_grad_(False)
    again = HFBackend.from_model(backend.model, backend.tokenizer, backend.settings)
    head = again.model.get_output_embeddings()
    seen = []
    head.register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    again.open(PROMPTS)
    assert seen == [True] and len(head._forward_pre_hooks) == 2  # the backend's, once, and this test's


def test_greedy_does_not_depend_on_batch_size(backend, smollm2):
    single = HFBackend(smollm2, GenerationSettings(max_new_tokens=12, batch_size=1, dtype=EXACT))
    assert [answer_line(t) for t in single.greedy(PROMPTS)] == [answer_line(t) for t in backend.greedy(PROMPTS)]


def sample(backend, prompts, seeds, samples=None):
    samples = samples or range(backend.settings.n_samples)
    return backend.open(prompts, seeds).sample(list(range(len(prompts))), samples)


def test_samples_are_seeded_per_prompt_whatever_the_batch(backend, smollm2):
    seeds = [11, 12, 13, 14, 15]
    first = sample(backend, PROMPTS, seeds)
    assert [len(s) for s in first] == [4] * 5
    assert sample(backend, PROMPTS, seeds) == first
    narrow = HFBackend(smollm2, replace(backend.settings, batch_size=3))
    assert sample(narrow, PROMPTS[2:4], seeds[2:4]) == first[2:4]
    assert sample(narrow, PROMPTS, seeds, range(2, 4)) == [texts[2:4] for texts in first]  # a later wave alone
    other = sample(backend, PROMPTS, [s + 100 for s in seeds])
    assert other != first


def test_greedy_and_samples_share_one_encoding_of_the_prompts(backend):
    session = backend.open(PROMPTS, [1, 2, 3, 4, 5])
    greedy = session.greedy()
    samples = session.sample([4, 1], range(3))
    assert greedy == backend.greedy(PROMPTS)  # decoding leaves the prompts' cache as it was
    assert samples == [sample(backend, PROMPTS, [1, 2, 3, 4, 5])[i][:3] for i in (4, 1)]
    assert session.greedy() == greedy


def test_sampling_at_temperature_varies_on_an_uncertain_question(smollm2):
    hot = HFBackend(smollm2, GenerationSettings(max_new_tokens=12, n_samples=16, temperature=1.0, top_k=40))
    answers = {answer_line(t) for t in sample(hot, [PROMPTS[3]], [0])[0]}
    assert len(answers) > 1


def test_top_k_one_is_greedy(backend, smollm2):
    top1 = HFBackend(smollm2, GenerationSettings(max_new_tokens=12, n_samples=3, top_k=1, temperature=0.5, dtype=EXACT))
    greedy = [answer_line(t) for t in backend.greedy(PROMPTS)]
    for per_prompt, expected in zip(sample(top1, PROMPTS, [1, 2, 3, 4, 5]), greedy):
        assert {answer_line(t) for t in per_prompt} == {expected}


def test_shared_exemplar_prefix_gives_the_answers_of_whole_prompts(backend):
    prefix = FORMAT.prompt(EXEMPLARS, "")[: -len(FORMAT.query(""))]
    assert all(prompt.startswith(prefix) for prompt in PROMPTS)
    shared = backend.open(PROMPTS, [1, 2, 3, 4, 5], [prefix] * len(PROMPTS))
    whole = backend.open(PROMPTS, [1, 2, 3, 4, 5])
    assert shared.greedy() == whole.greedy()
    assert shared.sample([0, 3], range(4)) == whole.sample([0, 3], range(4))


def test_counter_uniforms_are_uniform_and_depend_only_on_their_counters():
    seeds = torch.tensor([7, 7, 8, 2**32 - 1])
    samples = torch.tensor([0, 1, 0, 3])
    draws = counter_uniforms(seeds, samples, step=2, width=5000)
    assert draws.shape == (4, 5000) and 0 < draws.min() and draws.max() < 1
    assert torch.equal(counter_uniforms(seeds[2:], samples[2:], 2, 5000), draws[2:])  # no batch dependence
    assert not torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])
    assert not torch.equal(counter_uniforms(seeds, samples, 3, 5000), draws)
    for row in draws:  # each row passes a Kolmogorov-Smirnov test against U(0, 1)
        assert kstest(row.numpy(), "uniform").pvalue > 0.001


def test_gumbel_max_draws_tokens_with_softmax_probabilities(smollm2):
    """Draw one step many times (one counter each) and compare the frequencies with softmax (chi-square)."""
    backend = HFBackend(smollm2, GenerationSettings(max_new_tokens=1, n_samples=1, temperature=1.0, top_k=3))
    session = backend.open([PROMPTS[3]], [0])
    shared = torch.zeros(4000, dtype=torch.int64)  # 4000 continuations, all of the prompt's one row
    tokens = session._draw(session.logits, shared, shared, torch.arange(4000), step=0)
    top = session.logits[0].float().topk(3)
    observed = [(tokens == index).sum().item() for index in top.indices]
    assert sum(observed) == 4000
    expected = (top.values.double().softmax(-1) * 4000).tolist()
    assert chisquare(observed, expected).pvalue > 0.001


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
        f"the model's context of {long_tokens + 15} tokens (1 of 2 prompts are too long); "
        "shorten the question or lower detection.k_shot"
    )


@pytest.fixture(scope="module")
def real_questions():
    """Six train questions of the packaged sample data (three relations), with their golds."""
    frame, templates = read_entityquestions(SAMPLE_DATASET)
    train = prepare(frame, templates, ["P17", "P19", "P175"]).splits["train"]  # partly, hardly and not known
    asked = train.groupby("relation", sort=False).head(2).reset_index(drop=True)
    return asked, train, dict(zip(asked["question_id"], asked["answers"].map(list)))


def categories_of(asked, generations, golds):
    scored = generations.assign(correct=score(generations, golds, "substring"))
    return assign_categories(asked, scored).set_index("question_id")["category"]


def test_detection_optimisations_keep_greedy_answers_and_categories(real_questions, smollm2):
    """On 24 real prompts: greedy answers equal generate()'s; sampling until correct gives the
    categories of full sampling; a shard layout or batch size changes no answer; prompts from an
    exemplar pool give the same answers encoded with their shared prefix as whole."""
    asked, train, golds = real_questions
    prompts = build_prompts(asked, train, n_prompts=4, k_shot=4, seed=0, prompt_format=FORMAT)
    settings = GenerationSettings(max_new_tokens=8, n_samples=4, temperature=1.0, batch_size=32, dtype=EXACT)
    backend = HFBackend(smollm2, settings)
    full = generate_answers(backend, prompts, 0, "never_right", golds, "substring", until_correct=False)
    early = generate_answers(backend, prompts, 0, "never_right", golds, "substring", until_correct=True)
    assert categories_of(asked, early, golds).equals(categories_of(asked, full, golds))
    assert (early["mode"] == "sample").sum() <= (full["mode"] == "sample").sum()
    assert (full["mode"] == "sample").sum() >= 4 * 4  # some question no greedy answer got right: sampling is tested

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32).eval()
    greedy = full[full["mode"] == "greedy"]["answer"].tolist()
    for prompt, answer in zip(prompts["prompt"], greedy):
        encoded = tokenizer(prompt, return_tensors="pt")
        reference = model.generate(**encoded, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.eos_token_id)
        assert answer == answer_line(tokenizer.decode(reference[0, encoded["input_ids"].shape[1] :]))

    narrow = HFBackend.from_model(backend.model, backend.tokenizer, replace(settings, batch_size=16))
    halves = [prompts[prompts["question_id"].isin(asked["question_id"][part])] for part in (slice(0, 4), slice(4, 6))]
    sharded = pd.concat(
        [generate_answers(narrow, half, 0, "never_right", golds, "substring", False) for half in halves]
    )
    columns = ["question_id", "prompt_index", "mode", "sample_index"]
    pd.testing.assert_frame_equal(
        sharded.sort_values(columns).reset_index(drop=True), full.sort_values(columns).reset_index(drop=True)
    )

    pooled = build_prompts(asked, train, n_prompts=4, k_shot=4, seed=0, prompt_format=FORMAT, exemplar_pool=6)
    assert pooled["prefix_chars"].gt(0).all()
    shared = generate_answers(backend, pooled, 0, "never_right", golds, "substring")
    whole = generate_answers(backend, pooled.drop(columns="prefix_chars"), 0, "never_right", golds, "substring")
    pd.testing.assert_frame_equal(shared, whole)
