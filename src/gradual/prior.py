"""The answer prior: how much of what fine-tuning "unlocks" is a model answering a relation's most
frequent answer more often. A model that says "United States" to every country question gets every
pair whose answer that is right, and moves them to MaybeKnown or HighlyKnown, without knowing any.

A relation's frequent answers are its train pairs' first gold answers, normalised as the matcher
does (`gradual.matching.normalize`), ties broken by the answer's text; a model's answer is that
answer when the run's matcher would score it right against it.
"""

import math

import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from gradual.analysis import CONFIDENCE
from gradual.categories import MAYBE_KNOWN, UNKNOWN, WEAKLY_KNOWN, WEAKLY_OR_UNKNOWN, merge_unknown
from gradual.config import DEFAULTS
from gradual.dataset import relation_sort_key
from gradual.matching import is_correct, normalize

ALL = "All"
TOP = 5
PRIOR_COLUMNS = ["state", "relation", "answers", "top_answer", "top_answer_share"]
GROUP_COLUMNS = ["group", "pairs", "gold_in_top", "share", "ci_low", "ci_high", "odds_ratio", "p_value"]


def frequent_answers(train: pd.DataFrame, top: int = TOP) -> dict[str, list[str]]:
    """Per relation, its `top` most frequent normalised first gold answers, most frequent first."""
    answers = pd.DataFrame({"relation": train["relation"], "answer": [normalize(a[0]) for a in train["answers"]]})
    counts = answers.groupby(["relation", "answer"]).size().reset_index(name="n")
    counts = counts.sort_values(["relation", "n", "answer"], ascending=[True, False, True])
    return {relation: rows["answer"].head(top).tolist() for relation, rows in counts.groupby("relation")}


def answer_prior(
    train: pd.DataFrame, greedy: dict[str, pd.DataFrame], mode: str = DEFAULTS["matching"]["mode"]
) -> pd.DataFrame:
    """Per state and relation (and All): how many greedy answers the state gave to the train prompts,
    the relation's most frequent train answer, and the share of the answers that are it.

    `greedy` maps a state to its generations (question_id, mode, answer); only greedy rows count."""
    top = {relation: answers[0] for relation, answers in frequent_answers(train, 1).items()}
    relation_of = dict(zip(train["question_id"], train["relation"]))
    rows = []
    for state, generations in greedy.items():
        answers = generations[generations["mode"] == "greedy"]
        relations = answers["question_id"].map(relation_of)
        is_top = [is_correct(answer, [top[relation]], mode) for answer, relation in zip(answers["answer"], relations)]
        frame = pd.DataFrame({"relation": relations.to_numpy(), "is_top": is_top})
        rows.append({"state": state, "relation": ALL, "answers": len(frame), "top_answer": None,
                     "top_answer_share": float(frame["is_top"].mean()) if len(frame) else math.nan})  # fmt: skip
        for relation in sorted(frame["relation"].unique(), key=relation_sort_key):
            part = frame[frame["relation"] == relation]
            rows.append({"state": state, "relation": relation, "answers": len(part), "top_answer": top[relation],
                         "top_answer_share": float(part["is_top"].mean())})  # fmt: skip
    return pd.DataFrame(rows, columns=PRIOR_COLUMNS)


def prior_of_groups(train: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame, top: int = TOP) -> pd.DataFrame:
    """The pairs never right before a stage, by what became of them: reclassified (MaybeKnown after)
    from WeaklyKnown, from Unknown, and both, and the control (never right after too): how many have a
    gold answer among their relation's `top` most frequent, with a 95% Wilson interval; each
    reclassified group against the control with Fisher's exact test (odds ratio, two-sided p)."""
    frequent = frequent_answers(train, top)
    in_top = pd.Series(
        [normalize(a[0]) in frequent[r] for a, r in zip(train["answers"], train["relation"])],
        index=train["question_id"].to_numpy(),
    )
    states = pd.DataFrame(
        {
            "before": pd.Series(before["category"].astype(str).to_numpy(), index=before["question_id"].to_numpy()),
            "after": pd.Series(
                merge_unknown(after["category"]).astype(str).to_numpy(), index=after["question_id"].to_numpy()
            ),
        }
    ).dropna()
    states["in_top"] = in_top.reindex(states.index).fillna(False).astype(bool)
    never_right = states["before"].isin([WEAKLY_KNOWN, UNKNOWN, WEAKLY_OR_UNKNOWN])
    control = states[never_right & (states["after"] == WEAKLY_OR_UNKNOWN)]
    reclassified = states[never_right & (states["after"] == MAYBE_KNOWN)]
    groups = {
        "reclassified from WeaklyKnown": reclassified[reclassified["before"] == WEAKLY_KNOWN],
        "reclassified from Unknown": reclassified[reclassified["before"] == UNKNOWN],
        "reclassified": reclassified,
        "control (stayed never right)": control,
    }
    rows = []
    for name, members in groups.items():
        n, hits = len(members), int(members["in_top"].sum())
        low, high = proportion_confint(hits, n, alpha=1 - CONFIDENCE, method="wilson") if n else (math.nan, math.nan)
        row = {"group": name, "pairs": n, "gold_in_top": hits, "share": hits / n if n else math.nan,
               "ci_low": float(low), "ci_high": float(high), "odds_ratio": math.nan, "p_value": math.nan}  # fmt: skip
        if name.startswith("reclassified") and n and len(control):
            table = [[hits, n - hits], [int(control["in_top"].sum()), len(control) - int(control["in_top"].sum())]]
            result = stats.fisher_exact(table)
            row |= {"odds_ratio": float(result.statistic), "p_value": float(result.pvalue)}
        rows.append(row)
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)
