import re

import pytest

from gradual.stages import (
    STATE_PATTERN,
    TRAINED_STATE_PATTERN,
    Stage,
    epoch_splits,
    main_states,
    main_strategy,
    parse_stage,
    stage_state,
    sweep_state,
    trained_states,
)


def test_parse_stage_and_previous_state():
    assert parse_stage("stage1") == Stage("stage1", 1, None)
    assert parse_stage("stage1").previous == "base"
    assert parse_stage("stage2-s5") == Stage("stage2-s5", 2, 5)
    assert parse_stage("stage2-s5").previous == "stage1"
    assert parse_stage("stage4-s3").previous == "stage3-s3"
    assert parse_stage("sweep-e7") == Stage("sweep-e7", 1, None, 7)
    assert parse_stage("sweep-e7").previous == "base"
    with pytest.raises(ValueError, match="not a fine-tuned state"):
        parse_stage("base")


def test_trained_states():
    assert trained_states(1, [5]) == ["stage1"]
    assert trained_states(2, [1, 5]) == ["stage1", "stage2-s1", "stage2-s5"]
    assert trained_states(3, [5]) == ["stage1", "stage2-s5", "stage3-s5"]
    # later rounds follow the main strategy (the paper's, 5, when it runs) only
    assert trained_states(3, [1, 2, 5]) == ["stage1", "stage2-s1", "stage2-s2", "stage2-s5", "stage3-s5"]
    assert trained_states(4, [2, 3]) == ["stage1", "stage2-s2", "stage2-s3", "stage3-s2", "stage4-s2"]


@pytest.mark.parametrize("state", ["base", "stage1", "stage2-s5", "stage12-s3", "sweep-e10"])
def test_state_pattern_accepts(state):
    assert re.fullmatch(STATE_PATTERN, state)


@pytest.mark.parametrize("state", ["stage0", "stage1-s5", "stage2", "retest", "sweep"])
def test_state_pattern_rejects(state):
    assert not re.fullmatch(STATE_PATTERN, state)


def test_trained_state_pattern_is_the_state_pattern_without_base():
    assert not re.fullmatch(TRAINED_STATE_PATTERN, "base")
    assert all(re.fullmatch(TRAINED_STATE_PATTERN, state) for state in ["stage1", "stage2-s5", "sweep-e3"])


def test_state_names_round_trip_through_parse_stage():
    assert stage_state(1) == "stage1"
    assert stage_state(3, 2) == "stage3-s2"
    assert parse_stage(stage_state(3, 2)) == Stage("stage3-s2", 3, 2)
    assert parse_stage(sweep_state(4)).epochs == 4
    with pytest.raises(ValueError, match="needs a strategy"):
        stage_state(2)


def test_main_strategy_is_the_papers_when_it_runs():
    assert main_strategy([1, 5, 3]) == 5
    assert main_strategy([3, 1]) == 3
    assert main_states(3, [2, 5]) == ["stage1", "stage2-s5", "stage3-s5"]
    assert main_states(1, [2]) == ["stage1"]


def test_controls_and_seeds_name_their_states_and_continue_their_own_seed():
    from gradual.stages import control_state

    assert parse_stage("stage2-continue") == Stage("stage2-continue", 2, None, control="continue")
    assert parse_stage("stage2-continue").previous == "stage1"
    assert parse_stage("stage2-replay-only-seed3").previous == "stage1-seed3"
    assert parse_stage("stage3-s5-seed2").previous == "stage2-s5-seed2"
    assert parse_stage("stage1-seed2") == Stage("stage1-seed2", 1, None, seed=2)
    assert control_state("random", 4) == "stage2-random-seed4" and stage_state(2, 5, 4) == "stage2-s5-seed4"
    for state in ("stage2-random", "stage1-seed1", "stage2-s5-seed10", "stage2-replay-only-seed2"):
        assert re.fullmatch(STATE_PATTERN, state)
    for state in ("stage3-continue", "sweep-e3-seed1", "stage2-shuffle"):
        assert not re.fullmatch(STATE_PATTERN, state)
    assert trained_states(2, [5], ["continue"], [None, 1]) == [
        "stage1", "stage2-s5", "stage2-continue", "stage1-seed1", "stage2-s5-seed1", "stage2-continue-seed1"
    ]  # fmt: skip


def test_the_first_seed_keeps_the_plain_names_and_each_state_trains_with_its_own():
    from gradual.stages import seed_suffixes, training_seed

    assert seed_suffixes([3, 7, 9]) == {3: None, 7: 7, 9: 9}
    assert training_seed("stage1", [3, 7]) == 3 and training_seed("stage2-s5-seed7", [3, 7]) == 7
    assert training_seed("stage2-random", [3]) == 3 and training_seed("sweep-e2", [5]) == 5


@pytest.mark.parametrize(
    ("selection_split", "in_epoch_sweep", "expected"),
    [("dev", False, ["dev"]), ("dev", True, ["dev", "test"]), ("test", False, ["dev", "test"])],
)
def test_test_is_scored_per_epoch_only_where_it_picks_the_epoch_or_table6_reads_it(
    selection_split, in_epoch_sweep, expected
):
    assert epoch_splits(selection_split, in_epoch_sweep) == expected
