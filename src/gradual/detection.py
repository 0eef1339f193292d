"""One shard of knowledge detection: greedy answers for every prompt, samples where they are needed;
and the scoring of answers, kept apart so that a matcher change does not regenerate them."""

import numpy as np
import pandas as pd

from gradual.generation import Backend
from gradual.matching import answer_line, is_correct
from gradual.seeding import stable_seed

SAMPLING = ("never_right", "all", "off")
GENERATION_COLUMNS = ["question_id", "prompt_index", "mode", "sample_index", "answer"]


def sampling_mode(prompt_set: str, fine_tuned: bool, redetect_sampling: bool, sample_all: bool) -> str:
    """Which prompts of a generation job get sampled answers: none for the evaluation prompts, and
    none after fine-tuning unless `redetect_sampling` (the paper merges WeaklyKnown and Unknown
    there); otherwise those of the questions no greedy answer got right, or all with `sample_all`."""
    if prompt_set == "eval" or (fine_tuned and not redetect_sampling):
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


def _rows(prompts: pd.DataFrame, mode: str, texts: list[list[str]]) -> pd.DataFrame:
    n = len(texts[0]) if texts else 0
    frame = prompts[["question_id", "prompt_index"]].loc[prompts.index.repeat(n)].reset_index(drop=True)
    frame["mode"] = mode
    frame["sample_index"] = np.tile(np.arange(n), len(prompts))
    frame["answer"] = [answer_line(text) for per_prompt in texts for text in per_prompt]
    return frame


def score(generations: pd.DataFrame, golds: dict[str, list[str]], match_mode: str) -> pd.Series:
    """Whether each answer is right: the matcher applied to every row (aligned with `generations`)."""
    correct = [
        is_correct(answer, golds[q], match_mode) for answer, q in zip(generations["answer"], generations["question_id"])
    ]
    return pd.Series(correct, index=generations.index, name="correct", dtype=bool)


def detect(
    backend: Backend,
    prompts: pd.DataFrame,
    seed: int,
    sampling: str = "never_right",
    golds: dict[str, list[str]] | None = None,
    match_mode: str | None = None,
) -> pd.DataFrame:
    """Greedy answer lines for all prompts, and sampled ones by `sampling`: `never_right` samples the
    prompts of questions no greedy answer got right under `match_mode` (only those can be Weakly- or
    Unknown; it needs `golds`), `all` samples every prompt, `off` none (evaluation, and re-detection
    as the paper does it). The answers are not scored here: see `score`."""
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {SAMPLING}, not {sampling!r}")
    greedy = _rows(prompts, "greedy", [[text] for text in backend.greedy(prompts["prompt"].tolist())])
    if sampling == "off":
        return greedy
    if sampling == "all":
        to_sample = prompts
    else:
        if golds is None or match_mode is None:
            raise ValueError("sampling the never-right questions needs the gold answers and the match mode")
        answered = score(greedy, golds, match_mode).groupby(greedy["question_id"]).any()
        to_sample = prompts[prompts["question_id"].map(answered).eq(False)]
    if to_sample.empty:
        return greedy
    seeds = [stable_seed(seed, q, p) for q, p in zip(to_sample["question_id"], to_sample["prompt_index"])]
    sampled = _rows(to_sample, "sample", backend.sample(to_sample["prompt"].tolist(), seeds))
    return pd.concat([greedy, sampled], ignore_index=True)[GENERATION_COLUMNS]
