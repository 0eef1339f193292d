"""What depends on the model's architecture, for two real families: SmolLM2-135M-Instruct (Llama-style,
one full-attention cache per layer) and Gemma 3 270M (base; sliding-window attention on most layers, a
262k vocabulary, "\\n\\n" as one token), through the checks `python -m gradual.modelcheck` runs on any
model: the `hf` backend's greedy answers equal `transformers.generate`'s, its samples decode from the
prompts' kept cache (sliding layers included) and do not depend on batch or wave, and the training loss
covers exactly the answer tokens."""

from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual import modelcheck
from gradual.generation import hf as hf_module
from gradual.generation.hf import HFBackend

FAMILIES = ["smollm2", "gemma3"]
NEAR_TIE = 0.25  # float32 logits; the near ties seen on SmolLM2's EntityQuestions prompts were below 0.11


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    """(model folder, its hf backend): each model loaded once for the module."""
    folder = request.getfixturevalue(request.param)
    return folder, HFBackend(folder, modelcheck.SETTINGS)


@pytest.fixture(scope="module")
def prompts() -> list[str]:
    return modelcheck.sample_prompts()


def test_greedy_equals_transformers_generate(family, prompts):
    folder, backend = family
    pairs = modelcheck.greedy_against_generate(folder, backend, prompts)
    assert len(pairs) == 12 and all(modelcheck.same_answers(pairs)), pairs


@pytest.mark.parametrize("name", FAMILIES)
def test_in_bfloat16_greedy_repeats_and_parts_from_generate_only_at_near_ties(request, name):
    """bfloat16 kernels sum in an order chosen by the batch's shape, so a batched answer may part from
    `generate`'s one-prompt answer, but only where the float32 model itself nearly ties the two tokens;
    and the same config gives the same answers again, in a new backend too."""
    folder = request.getfixturevalue(name)
    prompts = modelcheck.sample_prompts(per_relation=4, n_prompts=2)
    settings = replace(modelcheck.SETTINGS, dtype="bfloat16")
    backend = HFBackend(folder, settings)
    pairs = modelcheck.greedy_against_generate(folder, backend, prompts)
    assert backend.model.dtype == torch.bfloat16 and len(pairs) == 24
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    gaps = [
        modelcheck.divergence_gap(reference, backend.tokenizer, prompt, *pair)
        for prompt, pair, same in zip(prompts, pairs, modelcheck.same_answers(pairs))
        if not same
    ]
    assert sum(modelcheck.same_answers(pairs)) >= 20 and all(gap is not None and gap < NEAR_TIE for gap in gaps), gaps
    assert HFBackend(folder, settings).greedy(prompts) == [ours for ours, _ in pairs] == backend.greedy(prompts)


def test_divergence_gap_is_the_logit_difference_where_two_continuations_part(smollm2):
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    prompt = modelcheck.sample_prompts()[0]
    assert modelcheck.divergence_gap(model, tokenizer, prompt, " Paris\n", " Paris") is None  # one ends first
    ids = tokenizer(prompt).input_ids + tokenizer(" New", add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
    york, delhi = (tokenizer(word, add_special_tokens=False).input_ids[0] for word in (" York", " Delhi"))
    gap = modelcheck.divergence_gap(model, tokenizer, prompt, " New York\n", " New Delhi\n")
    assert gap == pytest.approx(abs(logits[york] - logits[delhi]).item(), abs=1e-4)


def test_samples_after_greedy_decode_from_the_kept_cache_in_any_batch_and_wave(family, prompts):
    _, backend = family
    drawn = modelcheck.samples_in_batches_and_waves(backend, prompts)
    assert drawn["branchable"]  # both families' caches are kept and branched, not encoded again
    assert any(len(set(per_prompt)) > 1 for per_prompt in drawn["after_greedy"])  # temperature 1: it samples
    assert drawn["greedy_again"] == drawn["greedy"]  # decoding left the kept cache as it was
    assert drawn["waves"] == drawn["after_greedy"][5:]


def test_prompts_encoded_in_groups_of_similar_length_answer_as_one_padded_batch(family, monkeypatch):
    """A chunk's prompts are encoded in groups of similar length and their caches left-padded to one
    width (sliding-window layers too, where no prompt passed the window): the answers are those of
    the whole chunk padded as one batch."""
    _, backend = family
    prompts = modelcheck.sample_prompts(per_relation=4, n_prompts=2)  # 24 prompts: three groups of 8
    wide = HFBackend.from_model(backend.model, backend.tokenizer, replace(backend.settings, batch_size=32))
    merges = []
    merge = hf_module._merge_left_padded
    monkeypatch.setattr(hf_module, "_merge_left_padded", lambda *args: merges.append(merge(*args)) or merges[-1])
    seeds, rows = list(range(24)), [0, 7, 15, 23]
    grouped = wide.open(prompts, seeds)
    assert len(merges) == 1 and merges[0] is not None  # merged, not encoded again as one batch
    monkeypatch.setattr(hf_module, "LENGTH_GROUPS", 1)
    whole = wide.open(prompts, seeds)
    assert len(merges) == 1 and whole.mask.shape == grouped.mask.shape
    assert grouped.greedy() == whole.greedy()
    assert grouped.sample(rows, range(3)) == whole.sample(rows, range(3))


def test_a_cache_it_cannot_branch_is_encoded_again_with_the_same_answers(monkeypatch, smollm2, prompts, caplog):
    backend = HFBackend(smollm2, modelcheck.SETTINGS)
    expected = modelcheck.samples_in_batches_and_waves(backend, prompts)
    monkeypatch.setattr(hf_module, "BRANCHABLE_LAYERS", ())  # as for a cache kind it does not know
    again = modelcheck.samples_in_batches_and_waves(backend, prompts)
    assert not again["branchable"] and "cannot be branched" in caplog.text
    for key in ("greedy", "greedy_again", "after_greedy", "waves"):
        assert again[key] == expected[key], key


@pytest.mark.parametrize("name", FAMILIES)
def test_the_loss_covers_exactly_the_answer_tokens(request, name):
    """The prompt is encoded as generation encodes it (the tokenizer's own special tokens, Gemma's <bos>),
    the target after it without any: the labels are the target's tokens and nothing else."""
    labels = modelcheck.loss_labels(AutoTokenizer.from_pretrained(request.getfixturevalue(name)))
    n = len(labels["prompt_ids"])
    assert labels["input_ids"][:n] == labels["prompt_ids"] and not any(labels["labelled"][:n])
    assert all(labels["labelled"][n:]) and labels["labelled_text"] == labels["target"] == " Paris\n"


def test_modelcheck_passes_on_smollm2(smollm2, capsys):
    assert modelcheck.main([str(smollm2)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in printed] == [
        "PASS  greedy equals transformers.generate",
        "PASS  samples the same in any batch and wave",
        "PASS  the loss covers exactly the answer tokens",
    ]


def long_prompts(count: int = 2, exemplars: int = 44) -> tuple[list[str], list[str]]:
    """Prompts of `exemplars` sample-data exemplars (some 600 tokens: past Gemma 3's 512-token sliding
    window) sharing them as a prefix, and that prefix of each."""
    from gradual import SAMPLE_DATASET
    from gradual.dataset import prepare, read_entityquestions
    from gradual.prompts import PromptFormat

    frame, templates = read_entityquestions(SAMPLE_DATASET)
    train = prepare(frame, templates).splits["train"]
    shots = list(zip(train["question"], train["answers"].map(lambda a: a[0])))
    questions = [question for question, _ in shots[exemplars : exemplars + count]]
    prompt_format = PromptFormat()
    prompts = [prompt_format.prompt(shots[:exemplars], question) for question in questions]
    prefix = prompts[0][: len(prompts[0]) - len(prompt_format.query(questions[0]))]
    return prompts, [prefix] * count


def test_prompts_past_the_sliding_window_and_a_shared_prefix_give_the_answers_of_whole_prompts(family):
    folder, backend = family
    prompts, prefixes = long_prompts()
    assert len(backend.tokenizer(prompts[0]).input_ids) > 560
    pairs = modelcheck.greedy_against_generate(folder, backend, prompts)
    assert all(modelcheck.same_answers(pairs)), pairs
    seeds, rows = [3, 4], [0, 1]
    whole, shared = backend.open(prompts, seeds), backend.open(prompts, seeds, prefixes)
    assert shared.greedy() == whole.greedy()
    assert shared.sample(rows, range(3)) == whole.sample(rows, range(3))
