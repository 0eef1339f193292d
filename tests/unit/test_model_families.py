"""What depends on the model's architecture, for two real families: SmolLM2-135M-Instruct (Llama-style,
one full-attention cache per layer) and Gemma 3 270M (base; sliding-window attention on most layers, a
262k vocabulary, "\\n\\n" as one token), through the checks `python -m gradual.modelcheck` runs on any
model: the `hf` backend's greedy answers equal `transformers.generate`'s, its samples decode from the
prompts' kept cache (sliding layers included) and do not depend on batch or wave, and the training loss
covers exactly the answer tokens."""

import pytest
from transformers import AutoTokenizer

from gradual import modelcheck
from gradual.generation import hf as hf_module
from gradual.generation.hf import HFBackend

FAMILIES = ["smollm2", "gemma3"]


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
    assert len(pairs) == 12 and all(ours == theirs for ours, theirs in pairs), pairs


def test_samples_after_greedy_decode_from_the_kept_cache_in_any_batch_and_wave(family, prompts):
    _, backend = family
    drawn = modelcheck.samples_in_batches_and_waves(backend, prompts)
    assert drawn["branchable"]  # both families' caches are kept and branched, not encoded again
    assert any(len(set(per_prompt)) > 1 for per_prompt in drawn["after_greedy"])  # temperature 1: it samples
    assert drawn["greedy_again"] == drawn["greedy"]  # decoding left the kept cache as it was
    assert drawn["waves"] == drawn["after_greedy"][5:]


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
    assert all(ours == theirs for ours, theirs in pairs), pairs
    seeds, rows = [3, 4], [0, 1]
    whole, shared = backend.open(prompts, seeds), backend.open(prompts, seeds, prefixes)
    assert shared.greedy() == whole.greedy()
    assert shared.sample(rows, range(3)) == whole.sample(rows, range(3))
