"""The paper's tables as DataFrames, each renderable with DataFrame.to_markdown(index=False).

Category values are plain strings; rows and columns of categories come in the order
HighlyKnown, MaybeKnown, WeaklyKnown, Unknown, WeaklyOrUnknown, listing only those that occur.
"""

import math
from statistics import NormalDist

import pandas as pd

from gradual.categories import ALL_CATEGORIES

TOTAL = "Total"
ALL = "All"
Z_95 = NormalDist().inv_cdf(0.975)


def _ordered(categories) -> list[str]:
    """The categories that occur, in ALL_CATEGORIES; anything else is an error."""
    present = {str(c) for c in categories}
    unknown = present - set(ALL_CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}: expected some of {list(ALL_CATEGORIES)}")
    return [c for c in ALL_CATEGORIES if c in present]


def _require(table: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} has no column(s) {missing}")


def _categories(table: pd.DataFrame, name: str) -> pd.DataFrame:
    _require(table, ["question_id", "category"], name)
    if table["question_id"].duplicated().any():
        raise ValueError(f"{name} has duplicate question ids")
    return pd.DataFrame({"question_id": table["question_id"].to_numpy(), "category": table["category"].astype(str)})


def transition_matrix(origin: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Questions by origin category (rows) and new category (columns), with Total row and column.

    Only questions in both tables count. First column `origin`. (Paper Tables 3, 4, 12.)
    """
    joined = _categories(origin, "origin table").merge(
        _categories(new, "new table"), on="question_id", suffixes=("_origin", "_new")
    )
    rows = _ordered(joined["category_origin"])
    columns = _ordered(joined["category_new"])
    table = pd.crosstab(joined["category_origin"], joined["category_new"])
    table = table.reindex(index=rows, columns=columns, fill_value=0).astype("int64")
    table.loc[TOTAL] = table.sum()
    table[TOTAL] = table.sum(axis=1)
    table.index.name = "origin"
    table.columns.name = None
    return table.reset_index()


def transition_difference(finetuned: pd.DataFrame, retest: pd.DataFrame) -> pd.DataFrame:
    """Cellwise `finetuned - retest` of two transition matrices; a cell missing from one is 0."""
    a = finetuned.set_index("origin")
    b = retest.set_index("origin")
    rows = _ordered([r for r in (*a.index, *b.index) if r != TOTAL]) + [TOTAL]
    columns = _ordered([c for c in (*a.columns, *b.columns) if c != TOTAL]) + [TOTAL]
    a = a.reindex(index=rows, columns=columns, fill_value=0)
    b = b.reindex(index=rows, columns=columns, fill_value=0)
    difference = (a - b).astype("int64")
    difference.index.name = "origin"
    return difference.reset_index()


def accuracy(correct: pd.Series) -> dict:
    """Mean of boolean `correct`, its count and a 95% Wilson score interval (NaN when empty)."""
    if correct.isna().any():
        raise ValueError("correct has missing values")
    n = int(len(correct))
    if n == 0:
        return {"accuracy": math.nan, "n": 0, "ci_low": math.nan, "ci_high": math.nan}
    k = int(correct.astype(bool).sum())
    p = k / n
    z2 = Z_95**2
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = Z_95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return {"accuracy": p, "n": n, "ci_low": low, "ci_high": high}


def _results(table: pd.DataFrame, model: str) -> pd.DataFrame:
    _require(table, ["question_id", "correct"], f"results of {model!r}")
    if table["question_id"].duplicated().any():
        raise ValueError(f"results of {model!r} have duplicate question ids")
    return table


def accuracy_table(results: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per model, in the given order: model, accuracy, ci_low, ci_high, n. (Paper Tables 7, 8.)"""
    rows = []
    for model, table in results.items():
        stats = accuracy(_results(table, model)["correct"])
        rows.append({"model": model, **{k: stats[k] for k in ("accuracy", "ci_low", "ci_high", "n")}})
    return pd.DataFrame(rows, columns=["model", "accuracy", "ci_low", "ci_high", "n"])


def accuracy_by_category(results: dict[str, pd.DataFrame], base_categories: pd.DataFrame) -> pd.DataFrame:
    """Accuracy of each model on the questions of each category of the untuned model. (Paper Table 9.)

    Columns category, n and one accuracy column per model; rows the categories present, then All.
    Every model must have results for the same questions; questions without a base category are left out.
    """
    if not results:
        raise ValueError("no results")
    clash = {"category", "n"} & set(results)
    if clash:
        raise ValueError(f"model names {sorted(clash)} clash with the table's columns")
    tables = {model: _results(table, model) for model, table in results.items()}
    ids = {model: set(table["question_id"]) for model, table in tables.items()}
    first = next(iter(ids))
    differ = [model for model in ids if ids[model] != ids[first]]
    if differ:
        raise ValueError(f"results of {differ} cover other questions than those of {first!r}")
    base = _categories(base_categories, "base category table")
    base = base[base["question_id"].isin(ids[first])]
    order = _ordered(base["category"])
    correct = {
        model: base["question_id"].map(pd.Series(t["correct"].to_numpy(), index=t["question_id"].to_numpy()))
        for model, t in tables.items()
    }
    rows = []
    for category in [*order, ALL]:
        mask = base["category"] == category if category != ALL else pd.Series(True, index=base.index)
        row = {"category": category, "n": int(mask.sum())}
        for model in tables:
            row[model] = accuracy(correct[model][mask])["accuracy"]
        rows.append(row)
    return pd.DataFrame(rows, columns=["category", "n", *tables])


def category_counts_by_stage(stages: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Questions per category for each model state, with a Total column. (Paper Tables 10 and 12.)"""
    counts = {
        name: _categories(table, f"category table of {name!r}")["category"].value_counts()
        for name, table in stages.items()
    }
    columns = _ordered({c for count in counts.values() for c in count.index})
    table = pd.DataFrame([counts[name].reindex(columns, fill_value=0) for name in stages], columns=columns)
    table = table.fillna(0).astype("int64")
    table[TOTAL] = table.sum(axis=1)
    table.insert(0, "stage", list(stages))
    return table.reset_index(drop=True)


def epoch_sweep_table(metrics: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per epoch count: the best test accuracy over its epochs, the epoch it came at, and the
    test accuracy after its last epoch. (Paper Table 6.)"""
    rows = []
    for epochs in sorted(metrics):
        table = metrics[epochs]
        _require(table, ["epoch", "test_accuracy"], f"metrics of the {epochs}-epoch run")
        if table.empty:
            raise ValueError(f"metrics of the {epochs}-epoch run are empty")
        table = table.sort_values("epoch", kind="stable")
        scores = table["test_accuracy"]
        best = scores.idxmax() if scores.notna().any() else None
        rows.append(
            {
                "epochs": int(epochs),
                "max_test_accuracy": float(scores.max()),
                "best_epoch": int(table.loc[best, "epoch"]) if best is not None else None,
                "final_test_accuracy": float(scores.iloc[-1]),
            }
        )
    return pd.DataFrame(rows, columns=["epochs", "max_test_accuracy", "best_epoch", "final_test_accuracy"])
