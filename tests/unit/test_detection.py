import pandas as pd
import pytest

from gradual.detection import GENERATION_COLUMNS, detect, sampling_mode, score, shard_count, shard_questions
from gradual.seeding import stable_seed


class ScriptedBackend:
    """Greedy answers from a table keyed by prompt; samples that record the seeds they were given."""

    def __init__(self, greedy_answers, n_samples=3):
        self.greedy_answers = greedy_answers
        self.n_samples = n_samples
        self.sampled_prompts, self.seeds = [], []

    def greedy(self, prompts):
        return [self.greedy_answers[p] + "\nQ: next" for p in prompts]

    def sample(self, prompts, seeds):
        self.sampled_prompts += prompts
        self.seeds += seeds
        return [[" Oslo" if i == 0 and p == "q2-p1" else " nope" for i in range(self.n_samples)] for p in prompts]


PROMPTS = pd.DataFrame(
    {
        "question_id": ["q1", "q1", "q2", "q2", "q3", "q3"],
        "prompt_index": [0, 1, 0, 1, 0, 1],
        "prompt": ["q1-p0", "q1-p1", "q2-p0", "q2-p1", "q3-p0", "q3-p1"],
    }
)
GOLDS = {"q1": ["Paris"], "q2": ["Oslo"], "q3": ["Rome"]}
GREEDY = {
    "q1-p0": " Paris",
    "q1-p1": " Lyon",
    "q2-p0": " Bergen",
    "q2-p1": " Bergen",
    "q3-p0": " Rome",
    "q3-p1": " Rome",
}


def test_samples_only_questions_no_greedy_answer_got_right():
    backend = ScriptedBackend(GREEDY)
    result = detect(backend, PROMPTS, seed=5, golds=GOLDS, match_mode="substring")
    assert list(result.columns) == GENERATION_COLUMNS  # answers only: scoring is a step of its own
    assert backend.sampled_prompts == ["q2-p0", "q2-p1"]
    assert backend.seeds == [stable_seed(5, "q2", 0), stable_seed(5, "q2", 1)]
    greedy = result[result["mode"] == "greedy"]
    assert greedy["answer"].tolist() == ["Paris", "Lyon", "Bergen", "Bergen", "Rome", "Rome"]
    assert score(greedy, GOLDS, "substring").tolist() == [True, False, False, False, True, True]
    sampled = result[result["mode"] == "sample"]
    assert len(sampled) == 2 * 3
    assert sampled["sample_index"].tolist() == [0, 1, 2, 0, 1, 2]
    assert sampled["prompt_index"].tolist() == [0, 0, 0, 1, 1, 1]
    assert score(sampled, GOLDS, "substring").tolist() == [False, False, False, True, False, False]


def test_which_questions_are_sampled_follows_the_match_mode():
    backend = ScriptedBackend({**GREEDY, "q3-p0": " Rome, Italy", "q3-p1": " Rome, Italy"})
    detect(backend, PROMPTS, seed=5, golds=GOLDS, match_mode="exact")
    assert backend.sampled_prompts == ["q2-p0", "q2-p1", "q3-p0", "q3-p1"]  # 'Rome, Italy' is not exactly Rome
    with pytest.raises(ValueError, match="needs the gold answers"):
        detect(backend, PROMPTS, seed=5)


def test_sample_all_samples_every_prompt():
    backend = ScriptedBackend(GREEDY)
    result = detect(backend, PROMPTS, seed=5, sampling="all")
    assert backend.sampled_prompts == PROMPTS["prompt"].tolist()
    assert (result["mode"] == "sample").sum() == 6 * 3


def test_sampling_off_gives_greedy_rows_only():
    backend = ScriptedBackend(GREEDY)
    result = detect(backend, PROMPTS, seed=5, sampling="off")
    assert backend.sampled_prompts == [] and len(result) == 6 and set(result["mode"]) == {"greedy"}
    with pytest.raises(ValueError, match="sampling must be one of"):
        detect(backend, PROMPTS, seed=5, sampling="some")


def test_no_sampling_when_every_question_is_answered():
    backend = ScriptedBackend({**GREEDY, "q2-p0": " Oslo"})
    result = detect(backend, PROMPTS, seed=5, golds=GOLDS, match_mode="substring")
    assert backend.sampled_prompts == []
    assert set(result["mode"]) == {"greedy"}


def test_score_applies_the_match_mode():
    answers = pd.DataFrame({"question_id": ["q3", "q3", "q1"], "answer": ["Rome, Italy", "rome", "Lyon"]})
    assert score(answers, GOLDS, "substring").tolist() == [True, True, False]
    assert score(answers, GOLDS, "exact").tolist() == [False, True, False]


@pytest.mark.parametrize(
    "prompt_set, fine_tuned, redetect_sampling, sample_all, expected",
    [
        ("detect", False, False, False, "never_right"),
        ("retest", False, False, True, "all"),
        ("eval", False, True, True, "off"),
        ("detect", True, False, False, "off"),  # re-detection as the paper does it
        ("detect", True, True, False, "never_right"),
    ],
)
def test_sampling_mode(prompt_set, fine_tuned, redetect_sampling, sample_all, expected):
    assert sampling_mode(prompt_set, fine_tuned, redetect_sampling, sample_all) == expected


def test_shards_partition_the_questions_in_order():
    ids = pd.Series(["a", "a", "b", "c", "c", "d", "e"])
    shards = [shard_questions(ids, i, 3).tolist() for i in range(3)]
    assert shards == [["a", "b"], ["c", "d"], ["e"]]
    with pytest.raises(ValueError, match="outside"):
        shard_questions(ids, 3, 3)


SHARDS = {"detect": {"train": 32, "test": 4}, "retest": 32}


@pytest.mark.parametrize(
    "shards, prompt_set, split, expected",
    [
        (2, "eval", "test", 2),  # one number for every prompt set and split
        (SHARDS, "detect", "train", 32),
        (SHARDS, "detect", "test", 4),
        (SHARDS, "detect", "dev", 1),  # a split left out
        (SHARDS, "retest", "train", 32),  # one number for every split of a prompt set
        (SHARDS, "eval", "test", 1),  # a prompt set left out
    ],
)
def test_shard_count(shards, prompt_set, split, expected):
    assert shard_count(shards, prompt_set, split) == expected
