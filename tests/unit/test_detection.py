import pandas as pd
import pytest

from gradual.detection import (
    GENERATION_COLUMNS,
    generate_answers,
    gold_answers,
    sampling_mode,
    score,
    shard_count,
    shard_questions,
)
from gradual.generation import GenerationSettings
from gradual.seeding import stable_seed


class ScriptedBackend:
    """Greedy answers from a table keyed by prompt; samples that record which (prompt, sample, seed)
    was drawn. Sample 0 of q2-p1 is right, and with `late_right` sample 5 of q4-p0."""

    def __init__(self, greedy_answers, n_samples=3, chunk_prompts=float("inf")):
        self.greedy_answers = greedy_answers
        self.settings = GenerationSettings(n_samples=n_samples)
        self.chunk_prompts = chunk_prompts
        self.sampled_prompts, self.seeds, self.draws, self.opened = [], [], [], []

    def open(self, prompts, seeds=None, prefixes=None):
        self.opened.append((list(prompts), prefixes))
        return ScriptedSession(self, prompts, seeds)


class ScriptedSession:
    def __init__(self, backend, prompts, seeds):
        self.backend, self.prompts, self.seeds = backend, prompts, seeds

    def greedy(self):
        return [self.backend.greedy_answers[p] + "\nQ: next" for p in self.prompts]

    def sample(self, rows, samples):
        out = []
        for row in rows:
            prompt = self.prompts[row]
            if samples.start == 0:
                self.backend.sampled_prompts.append(prompt)
                self.backend.seeds.append(self.seeds[row])
            self.backend.draws += [(prompt, s) for s in samples]
            right = {("q2-p1", 0), ("q4-p0", 5)}
            out.append([" Oslo" if (prompt, s) in right else " nope" for s in samples])
        return out


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
    result = generate_answers(backend, PROMPTS, seed=5, golds=GOLDS, match_mode="substring", until_correct=False)
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
    generate_answers(backend, PROMPTS, seed=5, golds=GOLDS, match_mode="exact")
    assert backend.sampled_prompts == ["q2-p0", "q2-p1", "q3-p0", "q3-p1"]  # 'Rome, Italy' is not exactly Rome
    with pytest.raises(ValueError, match="needs the gold answers"):
        generate_answers(backend, PROMPTS, seed=5)


def test_sample_all_samples_every_prompt():
    backend = ScriptedBackend(GREEDY)
    result = generate_answers(backend, PROMPTS, seed=5, sampling="all")
    assert backend.sampled_prompts == PROMPTS["prompt"].tolist()
    assert (result["mode"] == "sample").sum() == 6 * 3


def test_sampling_off_gives_greedy_rows_only():
    backend = ScriptedBackend(GREEDY)
    result = generate_answers(backend, PROMPTS, seed=5, sampling="off")
    assert backend.sampled_prompts == [] and len(result) == 6 and set(result["mode"]) == {"greedy"}
    with pytest.raises(ValueError, match="sampling must be one of"):
        generate_answers(backend, PROMPTS, seed=5, sampling="some")


def test_no_sampling_when_every_question_is_answered():
    backend = ScriptedBackend({**GREEDY, "q2-p0": " Oslo"})
    result = generate_answers(backend, PROMPTS, seed=5, golds=GOLDS, match_mode="substring")
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
        ("retest", False, False, True, "off"),  # the noise baseline of greedy-only re-detection
        ("retest", False, True, True, "all"),
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


PROMPTS4 = pd.concat(
    [PROMPTS, pd.DataFrame({"question_id": ["q4", "q4"], "prompt_index": [0, 1], "prompt": ["q4-p0", "q4-p1"]})],
    ignore_index=True,
)
GOLDS4 = {**GOLDS, "q4": ["Oslo"]}
GREEDY4 = {**GREEDY, "q4-p0": " Bergen", "q4-p1": " Bergen"}


def test_sampling_until_correct_stops_a_question_after_the_wave_with_a_right_sample():
    full_backend, early_backend = ScriptedBackend(GREEDY4, n_samples=8), ScriptedBackend(GREEDY4, n_samples=8)
    full = generate_answers(full_backend, PROMPTS4, seed=5, golds=GOLDS4, match_mode="substring", until_correct=False)
    early = generate_answers(early_backend, PROMPTS4, seed=5, golds=GOLDS4, match_mode="substring", until_correct=True)
    # q2 is right in the first wave (samples 0-1) and stops there; q4 only in the second (2-7)
    drawn = pd.DataFrame(early_backend.draws, columns=["prompt", "sample"]).groupby("prompt")["sample"].max()
    assert drawn.to_dict() == {"q2-p0": 1, "q2-p1": 1, "q4-p0": 7, "q4-p1": 7}
    assert len(full_backend.draws) == 4 * 8
    counts = {}
    for name, result in {"full": full, "early": early}.items():
        sampled = result[result["mode"] == "sample"]
        counts[name] = sampled.groupby("question_id").size().to_dict()
        right = score(sampled, GOLDS4, "substring").groupby(sampled["question_id"]).any()
        assert right.to_dict() == {"q2": True, "q4": True}  # the same categories either way
    assert counts == {"full": {"q2": 16, "q4": 16}, "early": {"q2": 4, "q4": 16}}  # n_sampled: what was drawn


def test_questions_are_opened_whole_in_chunks_of_about_chunk_prompts():
    backend = ScriptedBackend(GREEDY4, chunk_prompts=3)
    result = generate_answers(backend, PROMPTS4, seed=5, sampling="off")
    opened = [prompts for prompts, _ in backend.opened]
    assert all(len(chunk) <= 3 for chunk in opened)
    assert sorted(p for chunk in opened for p in chunk) == sorted(PROMPTS4["prompt"])
    for chunk in opened:  # a question's prompts are never split across chunks
        assert all(f"{p[:2]}-p0" in chunk and f"{p[:2]}-p1" in chunk for p in chunk)
    assert result["answer"].tolist() == [GREEDY4[p].strip() for p in PROMPTS4["prompt"]]  # in the prompts' order


def test_prompts_with_a_shared_prefix_pass_it_to_the_backend():
    with_prefix = PROMPTS.assign(prefix_chars=[2, 2, 2, 2, 2, 2])
    backend = ScriptedBackend(GREEDY)
    generate_answers(backend, with_prefix, seed=5, sampling="off")
    assert backend.opened[0][1] == [p[:2] for p in backend.opened[0][0]]
    generate_answers(backend, PROMPTS.assign(prefix_chars=0), seed=5, sampling="off")
    assert backend.opened[-1][1] is None


def test_test_scoring_takes_the_first_gold_answer_as_the_paper_does():
    questions = pd.DataFrame({"question_id": ["q1", "q2"], "answers": [["Paris", "City of Light"], ["Oslo"]]})
    answers = pd.DataFrame({"question_id": ["q1", "q1", "q2"], "answer": ["City of Light", "Paris", "Oslo"]})
    assert gold_answers(questions, "first") == {"q1": ["Paris"], "q2": ["Oslo"]}
    assert gold_answers(questions) == {"q1": ["Paris", "City of Light"], "q2": ["Oslo"]}
    # the paper (4.1.1): a multi-answer question is right only when its first answer is generated
    assert score(answers, gold_answers(questions, "first"), "substring").tolist() == [False, True, True]
    assert score(answers, gold_answers(questions, "any"), "substring").tolist() == [True, True, True]
    with pytest.raises(ValueError, match="first"):
        gold_answers(questions, "all")
