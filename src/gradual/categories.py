"""SliCK knowledge categories (Gekhman et al., 2024): the thresholds live here and nowhere else."""

import numpy as np
import pandas as pd

from gradual.dataset import relation_sort_key

HIGHLY_KNOWN = "HighlyKnown"
MAYBE_KNOWN = "MaybeKnown"
WEAKLY_KNOWN = "WeaklyKnown"
UNKNOWN = "Unknown"
CATEGORIES = (HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN, UNKNOWN)
# Without samples (re-detection after fine-tuning, as in the paper) the last two cannot be told apart.
WEAKLY_OR_UNKNOWN = "WeaklyOrUnknown"
MERGED_CATEGORIES = (HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_OR_UNKNOWN)
ALL_CATEGORIES = (*CATEGORIES, WEAKLY_OR_UNKNOWN)

COUNT_COLUMNS = ["n_greedy", "n_greedy_correct", "n_sampled", "n_sampled_correct"]


def categorize(counts: pd.DataFrame, sampled: bool = True) -> pd.Series:
    """Category of each row of greedy/sampled counts.

    HighlyKnown: every greedy answer right; MaybeKnown: some; WeaklyKnown: no greedy answer right
    but at least one sample; Unknown: nothing right. Without sampling (`sampled=False`) a question
    no greedy answer got right is WeaklyOrUnknown; with sampling, one that has no samples is an
    error rather than a guess.
    """
    n_greedy = counts["n_greedy"].to_numpy()
    greedy_correct = counts["n_greedy_correct"].to_numpy()
    sampled_n = counts["n_sampled"].to_numpy()
    sampled_correct = counts["n_sampled_correct"].to_numpy()
    if (n_greedy == 0).any():
        raise ValueError("a question has no greedy generations: categories need at least one prompt")
    if sampled and ((greedy_correct == 0) & (sampled_n == 0)).any():
        raise ValueError(
            "a question with no correct greedy answer has no samples: WeaklyKnown and Unknown "
            "cannot be told apart (set generation.n_samples >= 1)"
        )
    never_right = (WEAKLY_KNOWN, UNKNOWN) if sampled else (WEAKLY_OR_UNKNOWN, WEAKLY_OR_UNKNOWN)
    category = np.select(
        [greedy_correct == n_greedy, greedy_correct > 0, sampled_correct > 0],
        [HIGHLY_KNOWN, MAYBE_KNOWN, never_right[0]],
        default=never_right[1],
    )
    order = CATEGORIES if sampled else MERGED_CATEGORIES
    return pd.Series(pd.Categorical(category, categories=order), index=counts.index, name="category")


def merge_unknown(categories: pd.Series) -> pd.Series:
    """WeaklyKnown and Unknown as one WeaklyOrUnknown, to compare with a re-detection without samples."""
    merged = categories.astype(str).replace({WEAKLY_KNOWN: WEAKLY_OR_UNKNOWN, UNKNOWN: WEAKLY_OR_UNKNOWN})
    return pd.Series(pd.Categorical(merged, categories=MERGED_CATEGORIES), index=categories.index, name=categories.name)


def require_columns(table: pd.DataFrame, columns: list[str], name: str) -> None:
    """A table read by the analysis names what it lacks, rather than failing on a KeyError."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}")


def category_lookup(table: pd.DataFrame, name: str) -> pd.Series:
    """question_id -> category (plain strings) of a category table, checked once for every reader: a
    missing column, a repeated question or an unknown category is an error naming the table, not a NaN."""
    require_columns(table, ["question_id", "category"], name)
    if table["question_id"].duplicated().any():
        raise ValueError(f"{name} has duplicate question ids")
    category = table["category"].astype(str)
    unknown = set(category) - set(ALL_CATEGORIES)
    if unknown:
        raise ValueError(f"{name} has unknown categories {sorted(unknown)}: expected some of {list(ALL_CATEGORIES)}")
    return pd.Series(category.to_numpy(), index=table["question_id"].to_numpy(), name="category")


def count_generations(generations: pd.DataFrame) -> pd.DataFrame:
    """Per question: how many greedy and sampled answers there are and how many are correct."""
    greedy = generations["mode"] == "greedy"
    parts = {
        "n_greedy": greedy,
        "n_greedy_correct": greedy & generations["correct"],
        "n_sampled": ~greedy,
        "n_sampled_correct": ~greedy & generations["correct"],
    }
    flags = pd.DataFrame(parts).astype("int64")
    flags["question_id"] = generations["question_id"].to_numpy()
    return flags.groupby("question_id", sort=False)[COUNT_COLUMNS].sum()


def assign_categories(questions: pd.DataFrame, generations: pd.DataFrame, sampled: bool = True) -> pd.DataFrame:
    """One row per question: its relation, the four counts and its category."""
    counts = count_generations(generations)
    missing = set(questions["question_id"]) - set(counts.index)
    if missing:
        raise ValueError(f"{len(missing)} questions have no generations, e.g. {sorted(missing)[:3]}")
    table = questions[["question_id", "relation"]].join(counts, on="question_id")
    table["category"] = categorize(table, sampled).astype(str).to_numpy()
    return table.reset_index(drop=True)


def category_counts(categories: pd.DataFrame) -> pd.DataFrame:
    """Questions per category and relation, with a Total row and column (the paper's Table 2)."""
    table = pd.crosstab(categories["relation"], categories["category"], dropna=False)
    table = table.loc[sorted(table.index, key=relation_sort_key)]
    merged = (categories["category"] == WEAKLY_OR_UNKNOWN).any()
    table = table.reindex(columns=list(MERGED_CATEGORIES if merged else CATEGORIES), fill_value=0)
    table.loc["Total"] = table.sum()
    table["Total"] = table.sum(axis=1)
    table.index.name = "relation"
    table.columns.name = None
    return table.reset_index()
