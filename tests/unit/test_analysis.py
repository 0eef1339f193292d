import math

import pandas as pd
import pytest
from scipy import stats

from gradual.analysis import (
    accuracy,
    accuracy_by_category,
    accuracy_table,
    category_counts_by_stage,
    epoch_sweep_table,
    knowledge_gain,
    paired_comparison,
    transition_difference,
    transition_matrix,
)

H, M, W, U, WU = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "WeaklyOrUnknown"


def cats(mapping):
    return pd.DataFrame({"question_id": list(mapping), "relation": "P17", "category": list(mapping.values())})


ORIGIN = cats({"a": M, "b": M, "c": M, "d": U, "e": W, "f": H, "g": U, "x": M})
NEW = cats({"a": H, "b": M, "c": WU, "d": M, "e": WU, "f": H, "g": WU, "y": H})


def test_transition_matrix_counts_totals_and_order():
    table = transition_matrix(ORIGIN, NEW)
    assert list(table.columns) == ["origin", H, M, WU, "Total"]
    assert table["origin"].tolist() == [H, M, W, U, "Total"]
    assert table[H].tolist() == [1, 1, 0, 0, 2]
    assert table[M].tolist() == [0, 1, 0, 1, 2]
    assert table[WU].tolist() == [0, 1, 1, 1, 3]
    assert table["Total"].tolist() == [1, 3, 1, 2, 7]  # x and y are in one table only
    assert "| origin" in table.to_markdown(index=False)


def test_transition_matrix_accepts_categorical_columns():
    origin = ORIGIN.assign(category=pd.Categorical(ORIGIN["category"], categories=[H, M, W, U]))
    pd.testing.assert_frame_equal(transition_matrix(origin, NEW), transition_matrix(ORIGIN, NEW))


def test_transition_matrix_rejects_unknown_categories():
    with pytest.raises(ValueError, match="unknown categories"):
        transition_matrix(cats({"a": "Sometimes"}), NEW)


def test_transition_difference_subtracts_on_the_rows_both_have():
    finetuned = transition_matrix(ORIGIN, NEW)  # rows H, M, W, U
    retest = transition_matrix(cats({"a": M, "b": M, "f": H}), cats({"a": M, "b": U, "f": M}))  # rows H, M
    diff = transition_difference(finetuned, retest)
    assert list(diff.columns) == ["origin", H, M, U, WU, "Total"]
    assert diff["origin"].tolist() == [H, M, "Total"]  # W and U are not rows of the retest
    assert diff[H].tolist() == [1, 1, 2]
    assert diff[M].tolist() == [-1, 0, -1]
    assert diff[U].tolist() == [0, -1, -1]
    assert diff[WU].tolist() == [0, 1, 1]
    assert diff["Total"].tolist() == [0, 1, 1]


def test_table3_minus_table4_with_the_papers_four_origin_rows():
    untuned = cats({"a": H, "b": M, "c": M, "d": W, "e": W, "f": U, "g": U})
    stage1 = cats({"a": H, "b": H, "c": H, "d": M, "e": M, "f": M, "g": WU})
    retest = cats({"a": H, "b": H, "c": M, "d": M, "e": WU, "f": WU, "g": WU})
    table3, table4 = transition_matrix(untuned, stage1), transition_matrix(untuned, retest)
    assert table3["origin"].tolist() == [H, M, W, U, "Total"]  # four origin rows, three new types
    assert table3.set_index("origin").loc[W, M] == 2 and table3.set_index("origin").loc[U, M] == 1
    diff = transition_difference(table3, table4).set_index("origin")
    assert diff.loc[W, M] == 1 and diff.loc[U, M] == 1 and diff.loc[M, H] == 1
    assert diff.loc["Total"].tolist() == [1, 1, -2, 0]


# Wilson 95% intervals from published tables (Newcombe 1998, Table I; Brown, Cai & DasGupta 2001).
WILSON = {(8, 10): (0.4902, 0.9433), (1, 4): (0.0456, 0.6994), (2, 4): (0.1500, 0.8500), (3, 4): (0.3006, 0.9544)}


def test_accuracy_with_wilson_interval():
    result = accuracy(pd.Series([True] * 8 + [False] * 2))
    assert result["accuracy"] == 0.8
    assert result["n"] == 10
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(WILSON[8, 10], abs=5e-5)


def test_accuracy_edges():
    perfect = accuracy(pd.Series([True] * 5))
    assert perfect["accuracy"] == 1 and perfect["ci_high"] == 1
    assert perfect["ci_low"] == pytest.approx(0.5655, abs=5e-5)  # 5/5: [0.5655, 1]
    assert accuracy(pd.Series([False] * 5))["ci_low"] == 0
    empty = accuracy(pd.Series([], dtype=bool))
    assert empty["n"] == 0 and math.isnan(empty["accuracy"])


def results(correct):
    return pd.DataFrame({"question_id": list(correct), "correct": list(correct.values())})


RESULTS = {
    "untuned": results({"a": True, "b": False, "c": False, "d": False}),
    "one-stage": results({"a": True, "b": True, "c": False, "d": False}),
    "two-stage": results({"a": True, "b": True, "c": True, "d": False}),
}


def test_accuracy_table():
    table = accuracy_table(RESULTS)
    assert list(table.columns) == ["model", "accuracy", "ci_low", "ci_high", "n"]
    assert table["model"].tolist() == ["untuned", "one-stage", "two-stage"]
    assert table["accuracy"].tolist() == [0.25, 0.5, 0.75]
    assert table["n"].tolist() == [4, 4, 4]
    assert table["ci_low"].tolist() == pytest.approx([WILSON[k, 4][0] for k in (1, 2, 3)], abs=5e-5)
    assert table["ci_high"].tolist() == pytest.approx([WILSON[k, 4][1] for k in (1, 2, 3)], abs=5e-5)


def test_paired_comparison_known_values():
    # 10 questions: the model gains 1 (q0) and loses 9 (q1-q9) against the reference.
    reference = results({f"q{i}": i > 0 for i in range(10)})
    model = results({f"q{i}": i == 0 for i in range(10)})
    result = paired_comparison(model, reference)
    assert (result["gained"], result["lost"]) == (1, 9)
    assert result["difference"] == pytest.approx(-0.8)
    # exact McNemar: 2 * P(X <= 1), X ~ Binomial(10, 1/2) = 2 * 11 / 1024
    assert result["mcnemar_p"] == pytest.approx(22 / 1024)
    # paired t interval: differences [+1, -1 x 9], mean -0.8, sd 0.6325, se 0.2, t(0.975, 9) = 2.262157
    assert (result["difference_ci_low"], result["difference_ci_high"]) == pytest.approx(
        (-0.8 - 2.262157 * 0.2, -0.8 + 2.262157 * 0.2), abs=1e-5
    )


def test_paired_comparison_without_changes_is_a_point_and_p_one():
    same = results({"a": True, "b": False, "c": True})
    result = paired_comparison(same, same)
    assert (result["difference"], result["difference_ci_low"], result["difference_ci_high"]) == (0, 0, 0)
    assert (result["gained"], result["lost"], result["mcnemar_p"]) == (0, 0, 1.0)


def test_paired_comparison_needs_the_same_questions():
    with pytest.raises(ValueError, match="same questions"):
        paired_comparison(results({"a": True, "b": True}), results({"a": True, "c": False}))


def test_accuracy_table_with_comparisons():
    table = accuracy_table(
        RESULTS, {"one-stage": ("untuned", RESULTS["untuned"]), "two-stage": ("one-stage", RESULTS["one-stage"])}
    )
    assert table["compared_with"].tolist()[1:] == ["untuned", "one-stage"]
    assert pd.isna(table["compared_with"][0]) and pd.isna(table["mcnemar_p"][0])
    assert table["difference"].tolist()[1:] == pytest.approx([0.25, 0.25])
    assert table["gained"].tolist()[1:] == [1, 1] and table["lost"].tolist()[1:] == [0, 0]
    assert table["mcnemar_p"].tolist()[1:] == [1.0, 1.0]  # one discordant question: p = 2 * 1/2
    with pytest.raises(ValueError, match="not in the table"):
        accuracy_table(RESULTS, {"three-stage": ("untuned", RESULTS["untuned"])})


def test_accuracy_by_category():
    base = cats({"a": H, "b": M, "c": M, "d": U, "z": W})  # z has no results
    table = accuracy_by_category(RESULTS, base)
    assert list(table.columns) == ["category", "n", "untuned", "one-stage", "two-stage"]
    assert table["category"].tolist() == [H, M, U, "All"]
    assert table["n"].tolist() == [1, 2, 1, 4]
    assert table["untuned"].tolist() == [1.0, 0.0, 0.0, 0.25]
    assert table["one-stage"].tolist() == [1.0, 0.5, 0.0, 0.5]
    assert table["two-stage"].tolist() == [1.0, 1.0, 0.0, 0.75]


def test_accuracy_by_category_needs_the_same_questions():
    with pytest.raises(ValueError, match="other questions"):
        accuracy_by_category({**RESULTS, "other": results({"a": True})}, cats({"a": H}))


def test_category_counts_by_stage():
    stages = {
        "untuned": cats({"a": H, "b": M, "c": W, "d": U}),
        "stage 1": cats({"a": H, "b": H, "c": M, "d": WU}),
        "stage 2": cats({"a": H, "b": H, "c": H, "d": M}),
    }
    table = category_counts_by_stage(stages)
    assert list(table.columns) == ["stage", H, M, W, U, WU, "Total"]
    assert table["stage"].tolist() == ["untuned", "stage 1", "stage 2"]
    assert table[H].tolist() == [1, 2, 3]
    assert table[M].tolist() == [1, 1, 1]
    assert table[W].tolist() == [1, 0, 0]
    assert table[U].tolist() == [1, 0, 0]
    assert table[WU].tolist() == [0, 1, 0]
    assert table["Total"].tolist() == [4, 4, 4]


def test_epoch_sweep_table():
    metrics = {
        3: pd.DataFrame({"epoch": [1, 2, 3], "test_accuracy": [0.30, 0.35, 0.33], "train_loss": [1.0, 0.5, 0.2]}),
        1: pd.DataFrame({"epoch": [1], "test_accuracy": [0.31]}),
        2: pd.DataFrame({"epoch": [2, 1], "test_accuracy": [0.36, 0.32]}),  # out of order
    }
    table = epoch_sweep_table(metrics)
    assert list(table.columns) == ["epochs", "max_test_accuracy", "best_epoch", "final_test_accuracy"]
    assert table["epochs"].tolist() == [1, 2, 3]
    assert table["max_test_accuracy"].tolist() == [0.31, 0.36, 0.35]
    assert table["best_epoch"].tolist() == [1, 2, 2]
    assert table["final_test_accuracy"].tolist() == [0.31, 0.36, 0.33]
    assert "max_test_accuracy" in table.to_markdown(index=False)


def test_knowledge_gain_gives_the_papers_24_percent_from_its_table_10():
    # Table 10 (Qwen2-7B): HighlyKnown train pairs 34,426 untuned, 49,959 after stage 1, 53,691 after stage 2.
    ids = [f"q{i}" for i in range(60_000)]

    def highly_known(n):
        return pd.DataFrame({"question_id": ids, "category": [H] * n + [M] * (len(ids) - n)})

    untuned = highly_known(34_426)
    gain = knowledge_gain(
        {"stage 1": highly_known(49_959), "stage 2": highly_known(53_691)},
        {"untuned": untuned},
        {"stage 1": set(), "stage 2": set()},
    )
    paper = gain[(gain["pairs"] == "all") & (gain["stage"] == "stage 2")].iloc[0]
    assert (paper["gain"], paper["gain_vs_stage1"]) == (19_265, pytest.approx(19_265 / 15_533 - 1))
    assert round(paper["gain_vs_stage1"], 2) == 0.24


def test_epoch_selection_flags_a_choice_the_dev_set_could_not_make():
    from gradual.analysis import epoch_selection

    metrics = pd.DataFrame({"epoch": [1, 2, 3], "dev_accuracy": [0.5, 0.25, 0.25], "best": [True, False, False]})
    scores = pd.DataFrame(
        {
            "epoch": [1] * 4 + [2] * 4 + [3] * 4,
            "question_id": ["a", "b", "c", "d"] * 3,
            "correct": [True, True, False, False] + [True, False, False, False] * 2,
        }
    )
    chosen = epoch_selection(metrics, scores)
    # epoch 1 answers b, which epoch 3 does not, and nothing the other way: exact McNemar p = 1
    assert (chosen["best_epoch"], chosen["last_epoch"]) == (1, 3)
    assert (chosen["right_at_best_only"], chosen["right_at_last_only"], chosen["mcnemar_p"]) == (1, 0, 1.0)
    assert chosen["decided"] is False and (chosen["best_dev_accuracy"], chosen["last_dev_accuracy"]) == (0.5, 0.25)
    last = epoch_selection(metrics.assign(best=[False, False, True]), scores)
    assert last["decided"] is True  # the last epoch chosen: nothing to tell apart


def test_seed_spread_t_interval_matches_the_textbook_values():
    from gradual.analysis import seed_spread

    def results(right):  # 100 questions, the first `right` answered
        return pd.DataFrame({"question_id": range(100), "correct": [i < right for i in range(100)]})

    reference = {seed: results(50) for seed in (0, 1, 2)}
    model = {0: results(51), 1: results(52), 2: results(53)}  # differences 0.01, 0.02, 0.03
    row = seed_spread({"m": ("r", model, reference)}).iloc[0]
    # mean 0.02, sd 0.01, standard error 0.01 / sqrt(3); t(0.975, 2 df) = 4.30265: 0.02 -+ 0.024841
    assert row["difference_mean"] == pytest.approx(0.02) and row["difference_sd"] == pytest.approx(0.01)
    assert (row["difference_ci_low"], row["difference_ci_high"]) == (
        pytest.approx(-0.004841, abs=1e-6), pytest.approx(0.044841, abs=1e-6)
    )  # fmt: skip
    assert row["per_seed"].startswith("seed 0: 0.51 (+0.01, McNemar p 1)")
    # question noise: seed-averaged differences 1, 2/3, 1/3 and 97 zeros; mean 0.02, variance
    # (14/9 - 100 * 0.02**2) / 99, so t = 1.61645 on 99 degrees of freedom
    t = 0.02 / math.sqrt((14 / 9 - 100 * 0.02**2) / 99 / 100)
    assert t == pytest.approx(1.61645, abs=1e-5)
    assert row["question_p"] == pytest.approx(2 * stats.t.sf(t, 99)) and row["question_p"] > 0.05
    assert not row["beyond_noise"]


def test_the_same_difference_in_every_seed_is_judged_on_the_questions_alone():
    from gradual.analysis import seed_spread

    def results(right):
        return pd.DataFrame({"question_id": range(100), "correct": [i < right for i in range(100)]})

    reference = {seed: results(50) for seed in (0, 1)}
    row = seed_spread({"m": ("r", {0: results(60), 1: results(60)}, reference)}).iloc[0]
    assert row["difference_mean"] == pytest.approx(0.1) and row["difference_sd"] == 0
    assert math.isnan(row["p_value"])  # no spread over the seeds to test against
    assert row["question_p"] < 0.01 and row["beyond_noise"]
    one_seed = seed_spread({"m": ("r", {0: results(60)}, {0: results(50)})}).iloc[0]
    assert not one_seed["beyond_noise"]  # one seed says nothing about training noise
