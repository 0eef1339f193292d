"""The training data of each stage of gradual learning.

Stage 1 trains on the train pairs that are MaybeKnown for the untuned model. Every later stage
trains on the pairs that are MaybeKnown after the previous stage, kept by their *origin*: the
category the untuned model gave them. Which origins a stage keeps, and whether it replays
HighlyKnown pairs, is its strategy, as the paper defines them (Li et al., 2024, 4.2.2):

1. origin HighlyKnown, MaybeKnown or WeaklyKnown (not Unknown);
2. origin HighlyKnown or MaybeKnown;
3. origin MaybeKnown or WeaklyKnown;
4. every origin;
5. every origin, plus a fresh 20% of the pairs HighlyKnown after the previous stage, drawn at the
   start of every epoch (the paper's method).

Beside them, the controls (ours) ask whether stage 2's data is what helps, or simply more training
from stage 1 with a restarted schedule: each continues stage 1 with stage 2's settings on as many
examples per epoch as strategy 5 trains on (so on as many optimizer steps), drawn from its own pool:

- continue: stage 1's own training pairs (origin MaybeKnown) again;
- replay-only: only the pairs HighlyKnown after stage 1 (strategy 5's replay pool);
- random: train pairs drawn at random among those not HighlyKnown after stage 1.

Category values are plain strings. The origin comes from the untuned model's detection, which
samples, so WeaklyKnown and Unknown are told apart there; a merged origin (WeaklyOrUnknown) is
kept only by a strategy that keeps both, and refused by one that keeps one of the two.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradual.categories import HIGHLY_KNOWN, MAYBE_KNOWN, UNKNOWN, WEAKLY_KNOWN, WEAKLY_OR_UNKNOWN, category_lookup
from gradual.seeding import stable_seed
from gradual.stages import CONTROL_NAMES, PAPER_STRATEGY

PAIR_COLUMNS = ["question_id", "question", "answer", "relation", "origin"]
EXAMPLE_COLUMNS = ["epoch", "role", *PAIR_COLUMNS]
TARGET = "target"
REPLAY = "replay"


@dataclass(frozen=True)
class Strategy:
    number: int
    origins: frozenset[str]
    replay: bool
    description: str

    def keeps(self, origin: str) -> bool:
        if origin != WEAKLY_OR_UNKNOWN:
            return origin in self.origins
        split = {WEAKLY_KNOWN, UNKNOWN} & self.origins
        if len(split) == 1:
            raise ValueError(
                f"strategy {self.number} keeps {split.pop()} but not the other: it needs origin categories "
                "from a detection that samples (WeaklyOrUnknown cannot be split)"
            )
        return bool(split)


_EVERY_ORIGIN = frozenset({HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN, UNKNOWN})

STRATEGIES = {
    1: Strategy(
        1, frozenset({HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN}), False, "origin HighlyKnown, MaybeKnown or WeaklyKnown"
    ),
    2: Strategy(2, frozenset({HIGHLY_KNOWN, MAYBE_KNOWN}), False, "origin HighlyKnown or MaybeKnown"),
    3: Strategy(3, frozenset({MAYBE_KNOWN, WEAKLY_KNOWN}), False, "origin MaybeKnown or WeaklyKnown"),
    4: Strategy(4, _EVERY_ORIGIN, False, "every origin"),
    5: Strategy(
        5, _EVERY_ORIGIN, True, "every origin, with a fresh HighlyKnown replay each epoch (the paper's method)"
    ),
}


def get_strategy(number: int) -> Strategy:
    try:
        return STRATEGIES[int(number)]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"unknown strategy {number!r}: valid strategies are {sorted(STRATEGIES)}") from None


def _category_of(questions: pd.DataFrame, categories: pd.DataFrame, name: str) -> pd.Series:
    """The category of each question (aligned with `questions`), as plain strings."""
    found = questions["question_id"].map(category_lookup(categories, f"{name} category table"))
    missing = questions.loc[found.isna(), "question_id"]
    if len(missing):
        raise ValueError(f"{len(missing)} questions have no {name} category, e.g. {missing.head(3).tolist()}")
    return found


def _pairs(questions: pd.DataFrame, keep: pd.Series, origin: pd.Series | None) -> pd.DataFrame:
    chosen = questions[keep.to_numpy()]
    answers = chosen["answers"]
    empty = [qid for qid, a in zip(chosen["question_id"], answers) if len(a) == 0]
    if empty:
        raise ValueError(f"{len(empty)} questions have no answers, e.g. {empty[:3]}")
    return pd.DataFrame(
        {
            "question_id": chosen["question_id"].to_numpy(),
            "question": chosen["question"].to_numpy(),
            "answer": [a[0] for a in answers],
            "relation": chosen["relation"].to_numpy(),
            "origin": (origin[keep.to_numpy()].to_numpy() if origin is not None else [None] * len(chosen)),
        },
        columns=PAIR_COLUMNS,
    )


def stage1_pairs(questions: pd.DataFrame, base_categories: pd.DataFrame) -> pd.DataFrame:
    """The train pairs that are MaybeKnown for the untuned model, in question order.

    Columns question_id, question, answer (the first answer), relation, origin (the base category).
    """
    origin = _category_of(questions, base_categories, "base")
    return _pairs(questions, origin == MAYBE_KNOWN, origin)


def stage2_pairs(
    questions: pd.DataFrame,
    base_categories: pd.DataFrame,
    current_categories: pd.DataFrame,
    strategy: int,
) -> pd.DataFrame:
    """The pairs MaybeKnown in `current_categories` whose base category the strategy keeps.

    Same columns and order as `stage1_pairs`; `origin` is the base category.
    """
    chosen = get_strategy(strategy)
    origin = _category_of(questions, base_categories, "base")
    current = _category_of(questions, current_categories, "current")
    keep = (current == MAYBE_KNOWN) & origin.map(chosen.keeps).astype(bool)
    return _pairs(questions, keep, origin)


def replay_pool(
    questions: pd.DataFrame,
    current_categories: pd.DataFrame,
    base_categories: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The pairs HighlyKnown in `current_categories`: the replay candidates, in question order.

    Same columns as `stage1_pairs`; `origin` is the base category when `base_categories` is given,
    else missing (None).
    """
    current = _category_of(questions, current_categories, "current")
    origin = _category_of(questions, base_categories, "base") if base_categories is not None else None
    return _pairs(questions, current == HIGHLY_KNOWN, origin)


def replay_count(pool_size: int, ratio: float) -> int:
    """round(ratio * pool_size), halves rounded up."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"replay ratio must be in [0, 1], got {ratio}")
    return min(pool_size, math.floor(ratio * pool_size + 0.5))


def draw_replay(pool: pd.DataFrame, ratio: float, epoch: int, seed: int) -> pd.DataFrame:
    """A fresh random round(ratio * len(pool)) rows of `pool` for `epoch` (1-based), in pool order.

    Seeded by stable_seed(seed, "replay", epoch): the same (seed, epoch) gives the same rows,
    other epochs give other draws. No row is drawn twice.
    """
    if epoch < 1:
        raise ValueError(f"epochs are numbered from 1, got {epoch}")
    n = replay_count(len(pool), ratio)
    rng = np.random.default_rng(stable_seed(seed, "replay", int(epoch)))
    rows = np.sort(rng.choice(len(pool), size=n, replace=False)) if n else np.array([], dtype=int)
    return pool.iloc[rows].reset_index(drop=True)


def epoch_examples(pairs: pd.DataFrame, pool: pd.DataFrame, ratio: float, epoch: int, seed: int) -> pd.DataFrame:
    """One epoch's data for a replaying strategy: `pairs` (role "target") then this epoch's
    replay draw (role "replay"). Shuffling is left to the trainer."""
    replay = draw_replay(pool, ratio, epoch, seed)
    parts = [pairs.assign(role=TARGET), replay.assign(role=REPLAY)]
    # Concatenating an empty frame is deprecated in pandas; its columns are the same anyway.
    parts = [part for part in parts if len(part)] or parts[:1]
    return pd.concat(parts, ignore_index=True)


def stage_examples(pairs: pd.DataFrame, pool: pd.DataFrame, ratio: float, epochs: int, seed: int) -> pd.DataFrame:
    """Every epoch's examples of a stage (EXAMPLE_COLUMNS): its pairs and, where it replays, that
    epoch's draw from the pool (`epoch_examples`)."""
    parts = [epoch_examples(pairs, pool, ratio, epoch, seed).assign(epoch=epoch) for epoch in range(1, epochs + 1)]
    return pd.concat(parts, ignore_index=True)[EXAMPLE_COLUMNS]


CONTROLS = dict(
    zip(
        CONTROL_NAMES,
        [
            "stage 1's own training pairs again, as many examples as strategy 5 trains on",
            "only the pairs HighlyKnown after stage 1, as many examples as strategy 5 trains on",
            "train pairs drawn at random among those not HighlyKnown after stage 1, as many as strategy 5 trains on",
        ],
    )
)


def control_pool(control: str, questions: pd.DataFrame, base: pd.DataFrame, after_stage1: pd.DataFrame):
    """The pairs a control draws its examples from (module docstring), with their origin."""
    if control == "continue":
        return stage1_pairs(questions, base)
    if control == "replay-only":
        return replay_pool(questions, after_stage1, base)
    if control == "random":
        current = _category_of(questions, after_stage1, "current")
        return _pairs(questions, current != HIGHLY_KNOWN, _category_of(questions, base, "base"))
    raise ValueError(f"unknown control {control!r}: the controls are {list(CONTROLS)}")


def matched_epoch_size(questions: pd.DataFrame, base: pd.DataFrame, after_stage1: pd.DataFrame, ratio: float) -> int:
    """Examples per epoch of strategy 5 after stage 1: its pairs and its replay draw."""
    pairs = stage2_pairs(questions, base, after_stage1, PAPER_STRATEGY)
    return len(pairs) + replay_count(len(replay_pool(questions, after_stage1)), ratio)


def matched_draw(pool: pd.DataFrame, size: int, epoch: int, seed: int) -> pd.DataFrame:
    """`size` rows of `pool` for `epoch`: the whole pool as often as it fits, then a fresh seeded
    subset of the rest (stable_seed(seed, "control", epoch)), in pool order; none from an empty pool."""
    if pool.empty or size == 0:
        return pool.iloc[:0]
    whole, rest = divmod(size, len(pool))
    rng = np.random.default_rng(stable_seed(seed, "control", int(epoch)))
    rows = [*np.tile(np.arange(len(pool)), whole), *np.sort(rng.choice(len(pool), size=rest, replace=False))]
    return pool.iloc[rows].reset_index(drop=True)


def control_examples(pool: pd.DataFrame, size: int, epochs: int, seed: int) -> pd.DataFrame:
    """Every epoch's examples of a control: `size` draws from its pool (role "target")."""
    parts = [matched_draw(pool, size, epoch, seed).assign(epoch=epoch, role=TARGET) for epoch in range(1, epochs + 1)]
    return pd.concat(parts, ignore_index=True)[EXAMPLE_COLUMNS]
