import pandas as pd
import pytest

from gradual.prior import answer_prior, frequent_answers, prior_of_groups

P17 = ["United States"] * 3 + ["France"] * 2 + ["Japan", "Italy", "Spain", "Chile", "Peru"]
P19 = ["London", "London", "Paris"]
TRAIN = pd.DataFrame(
    {
        "question_id": range(len(P17) + len(P19)),
        "relation": ["P17"] * len(P17) + ["P19"] * len(P19),
        "answers": [[answer] for answer in P17 + P19],
    }
)


def test_a_relations_frequent_answers_are_counted_then_alphabetical():
    assert frequent_answers(TRAIN) == {
        "P17": ["united states", "france", "chile", "italy", "japan"],  # Peru and Spain left out
        "P19": ["london", "paris"],
    }


def test_the_answer_prior_counts_greedy_answers_the_matcher_scores_as_the_top_answer():
    generations = pd.DataFrame(
        {
            "question_id": [0, 1, 2, 3, 0, 10, 11, 12],
            "mode": ["greedy"] * 4 + ["sample"] + ["greedy"] * 3,
            "answer": ["The United States", "France", "Germany", "United States of America", "United States",
                       "London", "Paris", "London"],
        }
    )  # fmt: skip
    substring = answer_prior(TRAIN, {"stage1": generations}).set_index("relation")
    assert substring["answers"].to_dict() == {"All": 7, "P17": 4, "P19": 3}  # the sampled row left out
    assert substring["top_answer"].drop("All").to_dict() == {"P17": "united states", "P19": "london"}
    assert substring["top_answer_share"].to_dict() == pytest.approx({"All": 4 / 7, "P17": 2 / 4, "P19": 2 / 3})
    exact = answer_prior(TRAIN, {"stage1": generations}, "exact").set_index("relation")
    assert exact["top_answer_share"].to_dict() == pytest.approx({"All": 2 / 7, "P17": 0.0, "P19": 2 / 3})


def test_reclassified_pairs_against_those_that_stayed_never_right():
    before = ["Unknown", "Unknown", "WeaklyKnown", "Unknown", "WeaklyKnown", "MaybeKnown", "Unknown", "Unknown",
              "Unknown", "Unknown"]  # fmt: skip
    after = ["MaybeKnown", "MaybeKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "HighlyKnown", "Unknown",
             "MaybeKnown", "Unknown", "Unknown"]  # fmt: skip
    ids = range(len(before))
    table = prior_of_groups(
        TRAIN,
        pd.DataFrame({"question_id": ids, "category": before}),
        pd.DataFrame({"question_id": ids, "category": after}),
    ).set_index("group")
    # reclassified: 0, 1 (United States), 7 (Spain: not top) from Unknown; 2 (United States) from
    # WeaklyKnown; control 3, 4 (France), 6 (Italy), 8 (Chile), 9 (Peru: not top); 5 was MaybeKnown
    assert table["pairs"].tolist() == [1, 3, 4, 5] and table["gold_in_top"].tolist() == [1, 2, 3, 4]
    # Fisher, all reclassified 3 of 4 against the control 4 of 5: odds ratio 3 * 1 / (1 * 4); every
    # table with these margins (2, 3 or 4 in the corner: 21, 70, 35 of 126) is as likely or less: p = 1
    assert table.loc["reclassified", "odds_ratio"] == pytest.approx(0.75)
    assert table.loc["reclassified", "p_value"] == pytest.approx(1.0)
    assert table.loc["reclassified from Unknown", "odds_ratio"] == pytest.approx(2 * 1 / (1 * 4))
    assert pd.isna(table.loc["control (stayed never right)", "p_value"])
