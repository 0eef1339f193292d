import pandas as pd
import pytest

from gradual.categories import (
    CATEGORIES,
    assign_categories,
    categorize,
    category_counts,
    category_lookup,
    merge_unknown,
)


def counts(rows):
    return pd.DataFrame(rows, columns=["n_greedy", "n_greedy_correct", "n_sampled", "n_sampled_correct"])


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ((10, 10, 0, 0), "HighlyKnown"),  # P(T=0) = 1
        ((10, 9, 0, 0), "MaybeKnown"),  # just below 1
        ((10, 1, 0, 0), "MaybeKnown"),  # just above 0
        ((10, 0, 160, 1), "WeaklyKnown"),  # P(T=0) = 0, one sample right
        ((10, 0, 160, 0), "Unknown"),  # nothing right
        ((1, 1, 0, 0), "HighlyKnown"),
        ((10, 10, 160, 0), "HighlyKnown"),  # samples do not matter once greedy is right
        ((10, 5, 160, 0), "MaybeKnown"),
    ],
)
def test_category_boundaries(row, expected):
    assert categorize(counts([row])).tolist() == [expected]


def test_no_samples_for_a_never_right_question_is_an_error():
    with pytest.raises(ValueError, match="cannot be told apart"):
        categorize(counts([(10, 0, 0, 0)]))


def test_no_greedy_answers_is_an_error():
    with pytest.raises(ValueError, match="no greedy"):
        categorize(counts([(0, 0, 0, 0)]))


def generations(rows):
    return pd.DataFrame(rows, columns=["question_id", "mode", "correct"])


def test_assign_categories_counts_per_question():
    questions = pd.DataFrame({"question_id": ["a", "b", "c"], "relation": ["P1", "P1", "P2"]})
    gens = generations(
        [
            ("a", "greedy", True),
            ("a", "greedy", True),
            ("b", "greedy", False),
            ("b", "greedy", False),
            ("b", "sample", False),
            ("b", "sample", True),
            ("b", "sample", False),
            ("c", "greedy", True),
            ("c", "greedy", False),
        ]
    )
    table = assign_categories(questions, gens).set_index("question_id")
    assert table.loc["a", ["n_greedy", "n_greedy_correct", "n_sampled", "n_sampled_correct"]].tolist() == [2, 2, 0, 0]
    assert table.loc["b", ["n_greedy", "n_greedy_correct", "n_sampled", "n_sampled_correct"]].tolist() == [2, 0, 3, 1]
    assert table["category"].astype(str).to_dict() == {"a": "HighlyKnown", "b": "WeaklyKnown", "c": "MaybeKnown"}
    assert table.loc["c", "relation"] == "P2"


def test_assign_categories_refuses_questions_without_generations():
    questions = pd.DataFrame({"question_id": ["a", "z"], "relation": ["P1", "P1"]})
    with pytest.raises(ValueError, match="1 questions have no generations"):
        assign_categories(questions, generations([("a", "greedy", True)]))


def test_category_counts_table_has_totals_and_every_category():
    table = pd.DataFrame(
        {
            "relation": ["P1", "P1", "P2", "P2", "P2"],
            "category": ["HighlyKnown", "Unknown", "Unknown", "MaybeKnown", "Unknown"],
        }
    )
    result = category_counts(table).set_index("relation")
    assert list(result.columns) == [*CATEGORIES, "Total"]
    assert result.loc["P1"].tolist() == [1, 0, 0, 1, 2]
    assert result.loc["P2"].tolist() == [0, 1, 0, 2, 3]
    assert result.loc["Total"].tolist() == [1, 1, 0, 3, 5]


def test_without_sampling_never_right_is_weakly_or_unknown():
    result = categorize(counts([(4, 4, 0, 0), (4, 1, 0, 0), (4, 0, 0, 0)]), sampled=False)
    assert result.tolist() == ["HighlyKnown", "MaybeKnown", "WeaklyOrUnknown"]


def test_merge_unknown():
    series = pd.Series(["HighlyKnown", "WeaklyKnown", "Unknown", "MaybeKnown"])
    assert merge_unknown(series).tolist() == ["HighlyKnown", "WeaklyOrUnknown", "WeaklyOrUnknown", "MaybeKnown"]


def test_category_counts_of_a_merged_table():
    table = pd.DataFrame({"relation": ["P1", "P1"], "category": ["WeaklyOrUnknown", "HighlyKnown"]})
    result = category_counts(table)
    assert list(result.columns) == ["relation", "HighlyKnown", "MaybeKnown", "WeaklyOrUnknown", "Total"]
    assert result.set_index("relation").loc["Total"].tolist() == [1, 0, 1, 2]


def test_category_counts_lists_relations_in_wikidata_order():
    table = pd.DataFrame({"relation": ["P106", "P17", "P2"], "category": ["Unknown"] * 3})
    assert category_counts(table)["relation"].tolist() == ["P2", "P17", "P106", "Total"]


def test_every_reader_checks_a_category_table_the_same_way():
    table = pd.DataFrame({"question_id": ["q1", "q2"], "category": pd.Categorical(["MaybeKnown", "Unknown"])})
    assert category_lookup(table, "t").to_dict() == {"q1": "MaybeKnown", "q2": "Unknown"}
    with pytest.raises(ValueError, match=r"t has no column\(s\) \['category'\]"):
        category_lookup(table.drop(columns="category"), "t")
    with pytest.raises(ValueError, match="t has duplicate question ids"):
        category_lookup(pd.concat([table, table]), "t")
    with pytest.raises(ValueError, match=r"t has unknown categories \['Known'\]"):
        category_lookup(table.assign(category="Known"), "t")
