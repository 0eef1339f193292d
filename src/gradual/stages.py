"""Model states and the stages that produce them.

`base` is the untuned model; `stage1` is trained on the MaybeKnown pairs of `base`; `stage<n>-s<k>`
(n >= 2) continues `stage<n-1>-s<k>` (or `stage1`) on the pairs that are MaybeKnown after it,
filtered by strategy k; rounds after the second run on the main strategy only. `sweep-e<m>` is
stage 1 trained for m epochs (the one-stage epoch sweep).
"""

import re
from dataclasses import dataclass

BASE = "base"
TRAINED_STATE_PATTERN = r"stage1|stage(?:[2-9]|[1-9]\d+)-s\d+|sweep-e\d+"
STATE_PATTERN = rf"{BASE}|{TRAINED_STATE_PATTERN}"


@dataclass(frozen=True)
class Stage:
    state: str
    number: int  # 1 for stage 1 and the sweep
    strategy: int | None  # None for stage 1
    epochs: int | None = None  # set for the sweep only

    @property
    def previous(self) -> str:
        """The state this stage starts from and whose categories choose its data."""
        if self.number == 1:
            return BASE
        return stage_state(self.number - 1, self.strategy)


def parse_stage(state: str) -> Stage:
    if state == stage_state(1):
        return Stage(state, 1, None)
    if match := re.fullmatch(r"stage(\d+)-s(\d+)", state):
        return Stage(state, int(match.group(1)), int(match.group(2)))
    if match := re.fullmatch(r"sweep-e(\d+)", state):
        return Stage(state, 1, None, int(match.group(1)))
    raise ValueError(f"{state!r} is not a fine-tuned state (stage1, stage<n>-s<k>, sweep-e<m>)")


PAPER_STRATEGY = 5  # the paper's method (Table 8's last row)


def stage_state(number: int, strategy: int | None = None) -> str:
    """The state after stage `number` (every stage after the first follows one strategy)."""
    if number == 1:
        return "stage1"
    if strategy is None:
        raise ValueError(f"stage {number} needs a strategy")
    return f"stage{number}-s{strategy}"


def sweep_state(epochs: int) -> str:
    return f"sweep-e{epochs}"


def trained_states(rounds: int, strategies: list[int]) -> list[str]:
    """Every fine-tuned state of a run with `rounds` stages (1: one-stage, 2: the paper's two stages):
    stage 1, stage 2 with each strategy (Table 8), and the later rounds (Table 11) on the main
    strategy only, since the paper runs its rounds with its method."""
    later = [stage_state(n, main_strategy(strategies)) for n in range(3, rounds + 1)]
    return [stage_state(1)] + [stage_state(2, k) for k in strategies if rounds > 1] + later


def main_strategy(strategies: list[int]) -> int:
    """The strategy the run's headline tables follow: the paper's when it runs, else the first."""
    return PAPER_STRATEGY if PAPER_STRATEGY in strategies else strategies[0]


def main_states(rounds: int, strategies: list[int]) -> list[str]:
    """The states of rounds 1..`rounds` on the main strategy."""
    return [stage_state(n, main_strategy(strategies)) for n in range(1, rounds + 1)]
