"""Model states and the stages that produce them.

`base` is the untuned model; `stage1` is trained on the MaybeKnown pairs of `base`; `stage<n>-s<k>`
(n >= 2) continues `stage<n-1>-s<k>` (or `stage1`) on the pairs that are MaybeKnown after it,
filtered by strategy k; rounds after the second run on the main strategy only. `stage2-<control>`
continues `stage1` on a control's data (`gradual.method.CONTROLS`), matched on compute with strategy
5. `sweep-e<m>` is stage 1 trained for m epochs (the one-stage epoch sweep). A trained state with
another training seed than the run's first carries it: `stage1-seed1`, `stage2-s5-seed1`, ...; the
states of one seed continue each other.
"""

import re
from dataclasses import dataclass

BASE = "base"
CONTROL_NAMES = ("continue", "replay-only", "random")
_STAGE = rf"stage1|stage(?:[2-9]|[1-9]\d+)-s\d+|stage2-(?:{'|'.join(CONTROL_NAMES)})"
TRAINED_STATE_PATTERN = rf"(?:{_STAGE})(?:-seed\d+)?|sweep-e\d+"
STATE_PATTERN = rf"{BASE}|{TRAINED_STATE_PATTERN}"
PAPER_STRATEGY = 5  # the paper's method (Table 8's last row)


@dataclass(frozen=True)
class Stage:
    state: str
    number: int  # 1 for stage 1 and the sweep
    strategy: int | None  # None for stage 1 and the controls
    epochs: int | None = None  # set for the sweep only
    control: str | None = None  # set for a stage-2 control only
    seed: int | None = None  # a training seed other than the run's first

    @property
    def previous(self) -> str:
        """The state this stage starts from and whose categories choose its data."""
        if self.number == 1:
            return BASE
        if self.control is not None:
            return stage_state(1, seed=self.seed)
        return stage_state(self.number - 1, self.strategy, self.seed)


def parse_stage(state: str) -> Stage:
    if match := re.fullmatch(r"sweep-e(\d+)", state):
        return Stage(state, 1, None, int(match.group(1)))
    name, seed = state, None
    if match := re.fullmatch(r"(.+)-seed(\d+)", state):
        name, seed = match.group(1), int(match.group(2))
    if name == "stage1":
        return Stage(state, 1, None, seed=seed)
    if match := re.fullmatch(r"stage(\d+)-s(\d+)", name):
        if int(match.group(1)) >= 2:
            return Stage(state, int(match.group(1)), int(match.group(2)), seed=seed)
    if match := re.fullmatch(rf"stage2-({'|'.join(CONTROL_NAMES)})", name):
        return Stage(state, 2, None, control=match.group(1), seed=seed)
    raise ValueError(
        f"{state!r} is not a fine-tuned state (stage1, stage<n>-s<k>, stage2-<control>, each with an optional "
        "-seed<k>; sweep-e<m>)"
    )


def with_seed(state: str, seed: int | None) -> str:
    return state if seed is None else f"{state}-seed{seed}"


def seed_suffixes(seeds: list[int]) -> dict[int, int | None]:
    """Each training seed and what its states' names carry: nothing for the run's first seed, so a
    run with one seed keeps the plain names."""
    return {seed: (None if i == 0 else seed) for i, seed in enumerate(seeds)}


def training_seed(state: str, seeds: list[int]) -> int:
    """The training seed of a state: the one its name carries, else the run's first."""
    seed = parse_stage(state).seed
    return seeds[0] if seed is None else seed


def stage_state(number: int, strategy: int | None = None, seed: int | None = None) -> str:
    """The state after stage `number` (every stage after the first follows one strategy)."""
    if number == 1:
        return with_seed("stage1", seed)
    if strategy is None:
        raise ValueError(f"stage {number} needs a strategy")
    return with_seed(f"stage{number}-s{strategy}", seed)


def control_state(control: str, seed: int | None = None) -> str:
    if control not in CONTROL_NAMES:
        raise ValueError(f"unknown control {control!r}: the controls are {list(CONTROL_NAMES)}")
    return with_seed(f"stage2-{control}", seed)


def sweep_state(epochs: int) -> str:
    return f"sweep-e{epochs}"


def trained_states(
    rounds: int, strategies: list[int], controls: list[str] = (), seeds: list[int | None] = (None,)
) -> list[str]:
    """Every fine-tuned state of a run with `rounds` stages (1: one-stage, 2: the paper's two stages),
    for each training seed (None: the run's first): stage 1, stage 2 with each strategy (Table 8) and
    each control, and the later rounds (Table 11) on the main strategy only, since the paper runs its
    rounds with its method."""
    states = []
    for seed in seeds:
        later = [stage_state(n, main_strategy(strategies), seed) for n in range(3, rounds + 1)]
        second = [stage_state(2, k, seed) for k in strategies] + [control_state(c, seed) for c in controls]
        states += [stage_state(1, seed=seed)] + (second if rounds > 1 else []) + later
    return states


def main_strategy(strategies: list[int]) -> int:
    """The strategy the run's headline tables follow: the paper's when it runs, else the first."""
    return PAPER_STRATEGY if PAPER_STRATEGY in strategies else strategies[0]


def main_states(rounds: int, strategies: list[int], seed: int | None = None) -> list[str]:
    """The states of rounds 1..`rounds` on the main strategy."""
    return [stage_state(n, main_strategy(strategies), seed) for n in range(1, rounds + 1)]


def epoch_splits(selection_split: str, in_epoch_sweep: bool) -> list[str]:
    """The held-out splits a fine-tuning scores after every epoch: dev, which picks the epoch, and
    test only where test picks it (the paper's way) or a table reads it per epoch (the epoch sweep's
    Table 6); a state's test accuracy is otherwise measured once, on its chosen adapter."""
    return ["dev", "test"] if selection_split == "test" or in_epoch_sweep else ["dev"]
