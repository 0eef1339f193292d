import pandas as pd
import pytest

from gradual.categories import WEAKLY_OR_UNKNOWN
from gradual.method import (
    PAIR_COLUMNS,
    STRATEGIES,
    draw_replay,
    epoch_examples,
    get_strategy,
    replay_pool,
    stage1_pairs,
    stage2_pairs,
)

H, M, W, U, WU = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", WEAKLY_OR_UNKNOWN

# question id -> (base category, category after stage 1)
STATES = {
    "q01": (M, M),
    "q02": (M, H),
    "q03": (H, M),
    "q04": (W, M),
    "q05": (U, M),
    "q06": (W, U),
    "q07": (U, H),
    "q08": (H, H),
    "q09": (M, M),
    "q10": (M, W),
}


def questions(ids=tuple(STATES)):
    return pd.DataFrame(
        {
            "question_id": list(ids),
            "split": "train",
            "relation": ["P17" if i % 2 else "P26" for i in range(len(ids))],
            "question": [f"question {q}?" for q in ids],
            "answers": [[f"answer {q}", f"alias {q}"] for q in ids],
            "subject": [f"subject {q}" for q in ids],
        }
    )


def categories(column, ids=tuple(STATES), as_categorical=False):
    values = [STATES[q][column] for q in ids]
    table = pd.DataFrame(
        {
            "question_id": list(ids),
            "relation": "P17",
            "n_greedy": 10,
            "n_greedy_correct": 0,
            "n_sampled": 0,
            "n_sampled_correct": 0,
            "category": pd.Categorical(values) if as_categorical else values,
        }
    )
    return table


BASE = categories(0)
AFTER = categories(1)


def test_stage1_pairs_are_the_base_maybe_known_questions_in_order():
    # Category rows in another order than the questions: the question order wins.
    pairs = stage1_pairs(questions(), BASE.iloc[::-1])
    assert list(pairs.columns) == PAIR_COLUMNS
    assert pairs["question_id"].tolist() == ["q01", "q02", "q09", "q10"]
    assert pairs["answer"].tolist() == ["answer q01", "answer q02", "answer q09", "answer q10"]
    assert pairs["question"].tolist() == ["question q01?", "question q02?", "question q09?", "question q10?"]
    assert pairs["relation"].tolist() == ["P26", "P17", "P26", "P17"]
    assert pairs["origin"].tolist() == [M] * 4


def test_stage1_pairs_accepts_categorical_categories():
    pairs = stage1_pairs(questions(), categories(0, as_categorical=True))
    assert pairs["question_id"].tolist() == ["q01", "q02", "q09", "q10"]


def test_a_question_without_a_category_is_an_error():
    with pytest.raises(ValueError, match="1 questions have no base category"):
        stage1_pairs(questions(), BASE[BASE["question_id"] != "q05"])


# Every origin (untuned model, sampled) x category after stage 1 (re-detected without samples):
# g<origin><after>, e.g. gMH is MaybeKnown for the untuned model and HighlyKnown after stage 1.
GRID = {f"g{o[0]}{a[0]}": (o, a) for o in (H, M, W, U) for a in (H, M, WU)}


def grid_tables():
    ids = list(GRID)
    base = pd.DataFrame({"question_id": ids, "category": [GRID[q][0] for q in ids]})
    after = pd.DataFrame({"question_id": ids, "category": [GRID[q][1] for q in ids]})
    return questions(ids), base, after


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        # the paper (4.2.2): every strategy takes the pairs MaybeKnown after stage 1 (gXM), by origin
        (1, ["gHM", "gMM", "gWM"]),  # origin HighlyKnown, MaybeKnown or WeaklyKnown, not Unknown
        (2, ["gHM", "gMM"]),  # origin HighlyKnown or MaybeKnown
        (3, ["gMM", "gWM"]),  # origin MaybeKnown or WeaklyKnown
        (4, ["gHM", "gMM", "gWM", "gUM"]),  # every origin
        (5, ["gHM", "gMM", "gWM", "gUM"]),  # every origin (and replay, below)
    ],
)
def test_stage2_pairs_are_the_papers_strategies(strategy, expected):
    grid_questions, base, after = grid_tables()
    pairs = stage2_pairs(grid_questions, base, after, strategy)
    assert list(pairs.columns) == PAIR_COLUMNS
    assert pairs["question_id"].tolist() == expected
    assert pairs["origin"].tolist() == [GRID[q][0] for q in expected]
    assert pairs["answer"].tolist() == [f"answer {q}" for q in expected]


def test_with_sampled_re_detection_the_pairs_after_stage_1_are_still_only_the_maybe_known():
    # method.redetect_sampling: after stage 1 WeaklyKnown and Unknown are told apart; neither is kept
    ids = [f"g{o[0]}{a[0]}" for o in (H, M, W, U) for a in (H, M, W, U)]
    base = pd.DataFrame({"question_id": ids, "category": [{"H": H, "M": M, "W": W, "U": U}[q[1]] for q in ids]})
    after = pd.DataFrame({"question_id": ids, "category": [{"H": H, "M": M, "W": W, "U": U}[q[2]] for q in ids]})
    assert stage2_pairs(questions(ids), base, after, 1)["question_id"].tolist() == ["gHM", "gMM", "gWM"]
    assert stage2_pairs(questions(ids), base, after, 4)["question_id"].tolist() == ["gHM", "gMM", "gWM", "gUM"]


def test_stage2_pairs_on_the_other_hand_made_table():
    assert stage2_pairs(questions(), BASE, AFTER, 1)["question_id"].tolist() == ["q01", "q03", "q04", "q09"]
    assert stage2_pairs(questions(), BASE, AFTER, 3)["question_id"].tolist() == ["q01", "q04", "q09"]


def test_only_strategy_5_replays_and_it_replays_the_pairs_highly_known_after_stage_1():
    assert sorted(STRATEGIES) == [1, 2, 3, 4, 5]
    assert [STRATEGIES[k].replay for k in range(1, 6)] == [False, False, False, False, True]
    assert STRATEGIES[4].origins == STRATEGIES[5].origins == frozenset({H, M, W, U})
    assert get_strategy(5) is STRATEGIES[5]
    grid_questions, base, after = grid_tables()
    assert replay_pool(grid_questions, after, base)["question_id"].tolist() == ["gHH", "gMH", "gWH", "gUH"]


def test_unknown_strategy_names_the_valid_ones():
    with pytest.raises(ValueError, match=r"\[1, 2, 3, 4, 5\]"):
        stage2_pairs(questions(), BASE, AFTER, 6)


def test_a_merged_origin_is_kept_by_a_strategy_that_keeps_both_and_refused_by_one_that_splits_them():
    base = BASE.assign(category=BASE["category"].replace({W: WEAKLY_OR_UNKNOWN, U: WEAKLY_OR_UNKNOWN}))
    assert stage2_pairs(questions(), base, AFTER, 4)["question_id"].tolist() == ["q01", "q03", "q04", "q05", "q09"]
    assert stage2_pairs(questions(), base, AFTER, 2)["question_id"].tolist() == ["q01", "q03", "q09"]
    for strategy in (1, 3):
        with pytest.raises(ValueError, match=f"strategy {strategy} keeps WeaklyKnown but not the other"):
            stage2_pairs(questions(), base, AFTER, strategy)


def test_replay_pool_is_the_current_highly_known():
    pool = replay_pool(questions(), AFTER)
    assert list(pool.columns) == PAIR_COLUMNS
    assert pool["question_id"].tolist() == ["q02", "q07", "q08"]
    assert pool["origin"].isna().all()
    with_origin = replay_pool(questions(), AFTER, BASE)
    assert with_origin["origin"].tolist() == [M, U, H]


def pool_of(n):
    ids = [f"p{i:02d}" for i in range(n)]
    qs = questions(ids) if n else questions(())
    cats = pd.DataFrame({"question_id": ids, "category": [H] * n})
    return replay_pool(qs, cats)


def test_draw_replay_size_and_determinism():
    pool = pool_of(10)
    draw = draw_replay(pool, 0.2, epoch=1, seed=0)
    assert len(draw) == 2
    assert list(draw.columns) == PAIR_COLUMNS
    pd.testing.assert_frame_equal(draw, draw_replay(pool, 0.2, epoch=1, seed=0))
    assert len(draw_replay(pool, 0.25, 1, 0)) == 3  # 2.5 rounds up
    assert len(draw_replay(pool, 1.0, 1, 0)) == 10
    assert len(draw_replay(pool, 0.0, 1, 0)) == 0
    empty = draw_replay(pool_of(0), 0.2, 1, 0)
    assert empty.empty and list(empty.columns) == PAIR_COLUMNS


def test_draw_replay_differs_across_epochs_and_stays_in_the_pool():
    pool = pool_of(10)
    draws = [tuple(draw_replay(pool, 0.3, epoch, seed=7)["question_id"]) for epoch in range(1, 6)]
    assert len(set(draws)) >= 2
    for draw in draws:
        assert len(draw) == 3
        assert len(set(draw)) == 3
        assert set(draw) <= set(pool["question_id"])
    other_seed = [tuple(draw_replay(pool, 0.3, epoch, seed=8)["question_id"]) for epoch in range(1, 6)]
    assert other_seed != draws


def test_draw_replay_rejects_bad_arguments():
    with pytest.raises(ValueError, match="ratio"):
        draw_replay(pool_of(10), 1.5, 1, 0)
    with pytest.raises(ValueError, match="from 1"):
        draw_replay(pool_of(10), 0.2, 0, 0)


def test_epoch_examples_roles_and_counts():
    pairs = stage2_pairs(questions(), BASE, AFTER, 5)
    pool = pool_of(10)
    examples = epoch_examples(pairs, pool, 0.2, epoch=3, seed=1)
    assert list(examples.columns) == [*PAIR_COLUMNS, "role"]
    assert examples["role"].tolist() == ["target"] * 5 + ["replay"] * 2
    assert examples["question_id"].tolist()[:5] == pairs["question_id"].tolist()
    assert examples["question_id"].tolist()[5:] == draw_replay(pool, 0.2, 3, 1)["question_id"].tolist()
    no_replay = epoch_examples(pairs, pool_of(0), 0.2, epoch=1, seed=1)
    assert no_replay["role"].tolist() == ["target"] * 5


def test_controls_draw_as_many_examples_per_epoch_as_strategy_5_trains_on():
    from gradual.method import control_examples, control_pool, matched_draw, matched_epoch_size, stage_examples

    grid_questions, base, after = grid_tables()
    # strategy 5: the four pairs MaybeKnown after stage 1, and 20% of the four HighlyKnown after it (1)
    size = matched_epoch_size(grid_questions, base, after, 0.2)
    assert size == 4 + 1
    assert control_pool("continue", grid_questions, base, after)["question_id"].tolist() == ["gMH", "gMM", "gMW"]
    assert control_pool("replay-only", grid_questions, base, after)["question_id"].tolist() == [
        "gHH",
        "gMH",
        "gWH",
        "gUH",
    ]
    random_pool = control_pool("random", grid_questions, base, after)
    assert set(random_pool["question_id"]) == {q for q, (_, a) in GRID.items() if a != H} and len(random_pool) == 8
    continued = control_examples(control_pool("continue", grid_questions, base, after), size, epochs=2, seed=0)
    for _, epoch in continued.groupby("epoch"):
        ids = epoch["question_id"].tolist()
        assert len(ids) == 5 and set(ids) == {"gMH", "gMM", "gMW"}  # the pool once, then 2 of it drawn again
        assert set(epoch["role"]) == {"target"}
    pool = control_pool("replay-only", grid_questions, base, after)
    assert (
        matched_draw(pool, 2, epoch=1, seed=0)["question_id"].tolist()
        == matched_draw(pool, 2, 1, 0)["question_id"].tolist()
    )
    assert len({tuple(matched_draw(pool, 2, epoch, 0)["question_id"]) for epoch in range(1, 9)}) > 1  # fresh per epoch
    with pytest.raises(ValueError, match="unknown control"):
        control_pool("shuffle", grid_questions, base, after)
    replaying = stage_examples(stage2_pairs(grid_questions, base, after, 5), pool, 0.5, epochs=2, seed=0)
    assert replaying.groupby("epoch")["role"].apply(list).tolist() == [["target"] * 4 + ["replay"] * 2] * 2
