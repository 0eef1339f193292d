"""One shard of knowledge detection: greedy answers for every prompt, samples where they are needed;
and the scoring of answers, kept apart so that a matcher change does not regenerate them."""

import numpy as np
import pandas as pd
from tqdm import tqdm

from gradual.config import DEFAULTS
from gradual.generation import Backend
from gradual.matching import answer_line, is_correct
from gradual.seeding import stable_seed

SAMPLING = ("never_right", "all", "off")
# Which gold answers a response may match: the first only (the paper scores its test questions so,
# 4.1.1: "for questions with multiple answers, we recorded a response as correct if the model
# accurately generated the first answer") or any of them.
GOLD_ANSWERS = ("first", "any")
GENERATION_COLUMNS = ["question_id", "prompt_index", "mode", "sample_index", "answer"]


def sampling_mode(prompt_set: str, fine_tuned: bool, redetect_sampling: bool, sample_all: bool) -> str:
    """Which prompts of a generation job get sampled answers: none for the evaluation prompts, and
    none after fine-tuning unless `redetect_sampling` (the paper merges WeaklyKnown and Unknown
    there), nor then in the retest, the noise baseline of those re-detections; otherwise those of
    the questions no greedy answer got right, or all with `sample_all`."""
    if prompt_set == "eval" or ((fine_tuned or prompt_set == "retest") and not redetect_sampling):
        return "off"
    return "all" if sample_all else "never_right"


def shard_count(shards: int | dict, prompt_set: str, split: str) -> int:
    """How many generation jobs a prompt set of a split is split into, from `generation.shards`:
    one number for all, or per prompt set, each one number or per split (1 where left out)."""
    if isinstance(shards, int):
        return shards
    per_split = shards.get(prompt_set, 1)
    return per_split if isinstance(per_split, int) else per_split.get(split, 1)


def shard_questions(question_ids: pd.Series, shard: int, n_shards: int) -> np.ndarray:
    """The questions of one shard: contiguous, near-equal slices of the question order."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    return np.array_split(pd.unique(question_ids), n_shards)[shard]


def gold_answers(questions: pd.DataFrame, which: str = "any") -> dict[str, list[str]]:
    """question_id -> the gold answers a response to it may match (`which`: GOLD_ANSWERS)."""
    if which not in GOLD_ANSWERS:
        raise ValueError(f"gold answers must be one of {GOLD_ANSWERS}, not {which!r}")
    answers = questions["answers"].map(list)
    if which == "first":
        answers = answers.map(lambda golds: golds[:1])
    return dict(zip(questions["question_id"], answers))


def score(generations: pd.DataFrame, golds: dict[str, list[str]], match_mode: str) -> pd.Series:
    """Whether each answer is right: the matcher applied to every row (aligned with `generations`)."""
    correct = [
        is_correct(answer, golds[q], match_mode) for answer, q in zip(generations["answer"], generations["question_id"])
    ]
    return pd.Series(correct, index=generations.index, name="correct", dtype=bool)


def generate_answers(
    backend: Backend,
    prompts: pd.DataFrame,
    seed: int,
    sampling: str = "never_right",
    golds: dict[str, list[str]] | None = None,
    match_mode: str | None = None,
    until_correct: bool = DEFAULTS["generation"]["sample_until_correct"],
) -> pd.DataFrame:
    """Greedy answer lines for all prompts, and sampled ones by `sampling`: `never_right` samples the
    prompts of questions no greedy answer got right under `match_mode` (only those can be Weakly- or
    Unknown; it needs `golds`), `all` samples every prompt, `off` none (evaluation, and re-detection
    as the paper does it). With `until_correct` (and `golds`) a question one of whose first quarter of
    samples is right gets no more: its category is settled, only P(T > 0) would need the rest.

    Questions are taken a chunk at a time, each chunk's prompts encoded once (`backend.open`) for
    their greedy answers and all their samples; with a `prefix_chars` column (an exemplar pool) the
    shared start of the prompts is encoded once per chunk. The answers are not scored here: see `score`."""
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {SAMPLING}, not {sampling!r}")
    if sampling == "never_right" and (golds is None or match_mode is None):
        raise ValueError("sampling the never-right questions needs the gold answers and the match mode")
    judge = (
        None
        if golds is None or match_mode is None
        else lambda q, text: is_correct(answer_line(text), golds[q], match_mode)
    )
    stop_early = until_correct and judge is not None
    texts = prompts["prompt"].tolist()
    questions = prompts["question_id"].tolist()
    seeds = [stable_seed(seed, q, p) for q, p in zip(questions, prompts["prompt_index"])]
    prefixes = None
    if "prefix_chars" in prompts and (prompts["prefix_chars"] > 0).all():
        prefixes = [text[:n] for text, n in zip(texts, prompts["prefix_chars"])]
    greedy: dict[int, str] = {}
    samples: dict[int, list[str]] = {}
    chunks = _question_chunks(prompts, backend.chunk_prompts, by_length=prefixes is None)
    with tqdm(total=prompts["question_id"].nunique(), desc="detection", unit="question", mininterval=5) as progress:
        for rows in chunks:
            session = backend.open(
                [texts[i] for i in rows],
                [seeds[i] for i in rows],
                None if prefixes is None else [prefixes[i] for i in rows],
            )
            answers = dict(zip(rows, session.greedy()))
            greedy |= answers
            if sampling == "never_right":
                right = {questions[i] for i in rows if judge(questions[i], answers[i])}
                open_rows = [local for local, i in enumerate(rows) if questions[i] not in right]
            else:
                open_rows = [] if sampling == "off" else list(range(len(rows)))
            for wave in _sample_waves(backend.settings.n_samples, stop_early):
                if not open_rows:
                    break
                drawn = session.sample(open_rows, wave)
                right = set()
                for local, per_prompt in zip(open_rows, drawn):
                    samples.setdefault(rows[local], []).extend(per_prompt)
                    if stop_early and any(judge(questions[rows[local]], t) for t in per_prompt):
                        right.add(questions[rows[local]])
                open_rows = [local for local in open_rows if questions[rows[local]] not in right]
            progress.update(len({questions[i] for i in rows}))
    return _generation_rows(prompts, greedy, samples)


def _sample_waves(n_samples: int, until_correct: bool) -> list[range]:
    """The sample indices drawn together: all at once, or a first quarter and then the rest for
    the questions that quarter got nothing right (two waves keep the decoding batches full)."""
    first = max(1, n_samples // 4)
    if not until_correct or first == n_samples:
        return [range(n_samples)]
    return [range(first), range(first, n_samples)]


def _question_chunks(prompts: pd.DataFrame, chunk_prompts: float, by_length: bool) -> list[list[int]]:
    """Row positions in chunks of whole questions, about `chunk_prompts` prompts each (a question's
    prompts must share a chunk: its samples start from their greedy pass's cache). `by_length`
    orders questions by prompt length first, so a chunk pads little."""
    positions = pd.Series(range(len(prompts)), index=prompts.index).groupby(
        prompts["question_id"].to_numpy(), sort=False
    )
    groups = [group.tolist() for _, group in positions]
    if by_length:
        lengths = prompts["prompt"].str.len().to_numpy()
        groups.sort(key=lambda rows: lengths[rows].sum())
    chunks, current = [], []
    for rows in groups:
        if current and len(current) + len(rows) > chunk_prompts:
            chunks.append(current)
            current = []
        current.extend(rows)
    return chunks + [current] if current else chunks


def _generation_rows(prompts: pd.DataFrame, greedy: dict[int, str], samples: dict[int, list[str]]) -> pd.DataFrame:
    """One row per answer: greedy answers in prompt order, then each sampled prompt's samples in order."""
    sampled = sorted(samples)
    position = [*range(len(prompts)), *(i for i in sampled for _ in samples[i])]
    frame = prompts[["question_id", "prompt_index"]].iloc[position].reset_index(drop=True)
    frame["mode"] = ["greedy"] * len(prompts) + ["sample"] * (len(frame) - len(prompts))
    frame["sample_index"] = [0] * len(prompts) + [s for i in sampled for s in range(len(samples[i]))]
    frame["answer"] = [answer_line(greedy[i]) for i in range(len(prompts))] + [
        answer_line(text) for i in sampled for text in samples[i]
    ]
    return frame[GENERATION_COLUMNS]
