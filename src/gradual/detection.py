"""One shard of knowledge detection: greedy answers for every prompt, samples where they are needed."""

import numpy as np
import pandas as pd

from gradual.generation import Backend
from gradual.matching import answer_line, is_correct
from gradual.seeding import stable_seed

SAMPLING = ("never_right", "all", "off")
GENERATION_COLUMNS = ["question_id", "prompt_index", "mode", "sample_index", "answer", "correct"]


def shard_questions(question_ids: pd.Series, shard: int, n_shards: int) -> np.ndarray:
    """The questions of one shard: contiguous, near-equal slices of the question order."""
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is outside 0..{n_shards - 1}")
    return np.array_split(pd.unique(question_ids), n_shards)[shard]


def _rows(prompts: pd.DataFrame, mode: str, texts: list[list[str]], golds: dict, match_mode: str) -> pd.DataFrame:
    n = len(texts[0]) if texts else 0
    frame = prompts[["question_id", "prompt_index"]].loc[prompts.index.repeat(n)].reset_index(drop=True)
    frame["mode"] = mode
    frame["sample_index"] = np.tile(np.arange(n), len(prompts))
    flat = [text for per_prompt in texts for text in per_prompt]
    frame["answer"] = [answer_line(text) for text in flat]
    frame["correct"] = [is_correct(text, golds[q], match_mode) for text, q in zip(flat, frame["question_id"])]
    return frame


def detect(
    backend: Backend,
    prompts: pd.DataFrame,
    golds: dict[str, list[str]],
    seed: int,
    match_mode: str = "substring",
    sampling: str = "never_right",
) -> pd.DataFrame:
    """Greedy answers for all prompts, and sampled answers by `sampling`: `never_right` samples the
    prompts of questions no greedy answer got right (only those can be Weakly- or Unknown), `all`
    samples every prompt, `off` none (evaluation, and re-detection as the paper does it)."""
    if sampling not in SAMPLING:
        raise ValueError(f"sampling must be one of {SAMPLING}, not {sampling!r}")
    greedy = _rows(prompts, "greedy", [[text] for text in backend.greedy(prompts["prompt"].tolist())], golds, match_mode)
    if sampling == "off":
        return greedy[GENERATION_COLUMNS]
    if sampling == "all":
        to_sample = prompts
    else:
        answered = greedy.groupby("question_id")["correct"].any()
        to_sample = prompts[prompts["question_id"].map(answered).eq(False)]
    if to_sample.empty:
        return greedy[GENERATION_COLUMNS]
    seeds = [stable_seed(seed, q, p) for q, p in zip(to_sample["question_id"], to_sample["prompt_index"])]
    sampled = _rows(to_sample, "sample", backend.sample(to_sample["prompt"].tolist(), seeds), golds, match_mode)
    return pd.concat([greedy, sampled], ignore_index=True)[GENERATION_COLUMNS]
