"""The paper's tables as DataFrames, each renderable with DataFrame.to_markdown(index=False).

Category values are plain strings; rows and columns of categories come in the order
HighlyKnown, MaybeKnown, WeaklyKnown, Unknown, WeaklyOrUnknown, listing only those that occur.
"""

import math

import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from gradual.categories import (
    ALL_CATEGORIES,
    HIGHLY_KNOWN,
    MAYBE_KNOWN,
    UNKNOWN,
    WEAKLY_KNOWN,
    category_lookup,
    merge_unknown,
    require_columns,
)
from gradual.dataset import relation_sort_key

TOTAL = "Total"
ALL = "All"
SIGNIFICANCE = 0.05  # a difference is beyond noise where its p-value is below this, on every table
CONFIDENCE = 1 - SIGNIFICANCE  # and every interval is a 95% one
ACCURACY_COLUMNS = ["model", "accuracy", "ci_low", "ci_high", "n"]
PAIRED_COLUMNS = [
    "compared_with",
    "difference",
    "difference_ci_low",
    "difference_ci_high",
    "gained",
    "lost",
    "mcnemar_p",
]


def _ordered(categories) -> list[str]:
    """The categories that occur, in ALL_CATEGORIES; anything else is an error."""
    present = {str(c) for c in categories}
    unknown = present - set(ALL_CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories {sorted(unknown)}: expected some of {list(ALL_CATEGORIES)}")
    return [c for c in ALL_CATEGORIES if c in present]


def _categories(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """`category_lookup` as (question_id, category) columns, to merge on."""
    return category_lookup(table, name).rename_axis("question_id").reset_index()


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
    """Cellwise `finetuned - retest` of two transition matrices, on the origin rows both have (a
    difference of a row one of them lacks would compare nothing); a column one lacks counts 0 there.
    Totals are recomputed from the rows kept."""
    a = finetuned.set_index("origin").drop(index=TOTAL, columns=TOTAL)
    b = retest.set_index("origin").drop(index=TOTAL, columns=TOTAL)
    rows = [r for r in _ordered(a.index) if r in b.index]
    columns = _ordered([*a.columns, *b.columns])
    difference = a.reindex(index=rows, columns=columns, fill_value=0) - b.reindex(
        index=rows, columns=columns, fill_value=0
    )
    difference = difference.astype("int64")
    difference.loc[TOTAL] = difference.sum()
    difference[TOTAL] = difference.sum(axis=1)
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
    low, high = proportion_confint(k, n, alpha=1 - CONFIDENCE, method="wilson")
    return {"accuracy": k / n, "n": n, "ci_low": float(low), "ci_high": float(high)}


def paired_comparison(model: pd.DataFrame, reference: pd.DataFrame) -> dict:
    """`model` against `reference` on the same questions: the accuracy difference with a paired 95%
    interval, the questions it gained and lost, and the exact McNemar p-value.

    Both were scored on the same questions, so the comparison is per question: the interval is the
    paired t interval of the per-question differences (scipy's ttest_rel; a point when no question
    changed), and McNemar's exact test is the two-sided binomial test of gained among gained + lost.
    """
    pairs = _results(reference, "reference").merge(_results(model, "model"), on="question_id", validate="1:1")
    if len(pairs) != len(model) or len(pairs) != len(reference):
        raise ValueError("a paired comparison needs results for the same questions")
    before = pairs["correct_x"].astype(bool).to_numpy()
    after = pairs["correct_y"].astype(bool).to_numpy()
    gained, lost = int((after & ~before).sum()), int((before & ~after).sum())
    if len(pairs) < 2:
        low = high = math.nan
    else:
        low, high = stats.ttest_rel(after.astype(float), before.astype(float)).confidence_interval(CONFIDENCE)
    p_value = stats.binomtest(gained, gained + lost, 0.5).pvalue if gained + lost else 1.0
    return {
        "difference": float(after.mean() - before.mean()) if len(pairs) else math.nan,
        "difference_ci_low": float(low),
        "difference_ci_high": float(high),
        "gained": gained,
        "lost": lost,
        "mcnemar_p": float(p_value),
    }


def _results(table: pd.DataFrame, model: str) -> pd.DataFrame:
    require_columns(table, ["question_id", "correct"], f"results of {model!r}")
    if table["question_id"].duplicated().any():
        raise ValueError(f"results of {model!r} have duplicate question ids")
    return table


def accuracy_table(results: dict[str, pd.DataFrame], compared_with: dict[str, tuple[str, pd.DataFrame]] | None = None):
    """One row per model, in the given order: model, accuracy, ci_low, ci_high, n. (Paper Tables 7, 8, 11.)

    `compared_with` maps a model to the (name, results) of the state it is compared with; those rows
    gain the paired columns of `paired_comparison` (empty elsewhere).
    """
    compared_with = compared_with or {}
    unknown = set(compared_with) - set(results)
    if unknown:
        raise ValueError(f"comparisons for models not in the table: {sorted(unknown)}")
    rows = []
    for model, table in results.items():
        stats_ = accuracy(_results(table, model)["correct"])
        row = {"model": model, **{k: stats_[k] for k in ACCURACY_COLUMNS[1:]}}
        if model in compared_with:
            name, reference = compared_with[model]
            row |= {"compared_with": name, **paired_comparison(table, reference)}
        rows.append(row)
    columns = ACCURACY_COLUMNS + (PAIRED_COLUMNS if compared_with else [])
    table = pd.DataFrame(rows, columns=columns)
    if compared_with:
        table[["gained", "lost"]] = table[["gained", "lost"]].astype("Int64")
    return table


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
        require_columns(table, ["epoch", "test_accuracy"], f"metrics of the {epochs}-epoch run")
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


GAIN_COLUMNS = ["pairs", "baseline", "stage", "n", "baseline_highly_known", "highly_known", "gain", "gain_vs_stage1"]
ALL_PAIRS = "all"
NEVER_TRAINED = "never trained on"


def knowledge_gain(
    stages: dict[str, pd.DataFrame], baselines: dict[str, pd.DataFrame], trained_on: dict[str, set]
) -> pd.DataFrame:
    """HighlyKnown train pairs gained by each stage over a baseline, and each stage's gain against the
    first stage's: the paper's "24%" (abstract) is (53,691 - 34,426) / (49,959 - 34,426) - 1 from its
    Table 10, HighlyKnown after two stages, one stage and none.

    `stages` maps a stage label to its category table, in order (stage 1 first); `baselines` a label to
    a category table of the untuned model (the paper's "untuned", and the retest, whose count differs
    from the untuned one by prompt noise alone); `trained_on` a stage label to the question ids that it
    or a stage before it trained on (replay draws included). Rows: for pairs "all" (the paper's: the
    pairs trained on count) and "never trained on" (each stage's pairs outside its `trained_on`), for
    each baseline, one per stage: n pairs, HighlyKnown under the baseline and the stage, the gain and
    gain / first stage's gain - 1 (`gain_vs_stage1`; NaN for the first stage, and where the first
    stage gained nothing, as a ratio to a gain of 0 or less says nothing).
    """
    tables = {name: _categories(table, f"category table of {name!r}") for name, table in (stages | baselines).items()}
    highly = {
        name: pd.Series((t["category"] == HIGHLY_KNOWN).to_numpy(), index=t["question_id"].to_numpy())
        for name, t in tables.items()
    }
    common = set.intersection(*(set(h.index) for h in highly.values()))
    rows = []
    for pairs in (ALL_PAIRS, NEVER_TRAINED):
        for baseline in baselines:
            first_gain = None
            for stage in stages:
                ids = sorted(common - trained_on[stage]) if pairs == NEVER_TRAINED else sorted(common)
                before, after = int(highly[baseline][ids].sum()), int(highly[stage][ids].sum())
                gain = after - before
                relative = gain / first_gain - 1 if first_gain is not None and first_gain > 0 else math.nan
                first_gain = gain if first_gain is None else first_gain
                rows.append(
                    {
                        "pairs": pairs,
                        "baseline": baseline,
                        "stage": stage,
                        "n": len(ids),
                        "baseline_highly_known": before,
                        "highly_known": after,
                        "gain": gain,
                        "gain_vs_stage1": relative,
                    }
                )
    return pd.DataFrame(rows, columns=GAIN_COLUMNS)


def epoch_selection(metrics: pd.DataFrame, dev_scores: pd.DataFrame) -> dict:
    """Could the dev set tell the chosen epoch from the last one? Both epochs' dev answers compared
    question by question (`paired_comparison`: the questions only one of them answers, exact McNemar
    p); `decided` when they are
    the same epoch or the test says they differ (p < `SIGNIFICANCE`). Ties between epochs go to the earliest
    (`gradual.training.select_best_epoch`), the least trained of those the dev set cannot rank."""
    require_columns(metrics, ["epoch", "best", "dev_accuracy"], "training metrics")
    best = int(metrics.loc[metrics["best"], "epoch"].iloc[0])
    last = int(metrics["epoch"].max())
    by_epoch = {epoch: rows[["question_id", "correct"]] for epoch, rows in dev_scores.groupby("epoch")}
    paired = paired_comparison(by_epoch[best], by_epoch[last])
    accuracy = metrics.set_index("epoch")["dev_accuracy"]
    return {
        "best_epoch": best,
        "last_epoch": last,
        "best_dev_accuracy": float(accuracy[best]),
        "last_dev_accuracy": float(accuracy[last]),
        "right_at_best_only": paired["gained"],  # dev questions the chosen epoch answers and the last does not
        "right_at_last_only": paired["lost"],
        "mcnemar_p": paired["mcnemar_p"],
        "decided": best == last or paired["mcnemar_p"] < SIGNIFICANCE,
    }


def epoch_selection_table(metrics: dict[str, pd.DataFrame], dev_scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """`epoch_selection` of every trained state, one row each (its best epoch against its last)."""
    rows = [{"state": state} | epoch_selection(metrics[state], dev_scores[state]) for state in metrics]
    return pd.DataFrame(rows)


KEY_TRANSITIONS = [
    (MAYBE_KNOWN, HIGHLY_KNOWN),
    (WEAKLY_KNOWN, MAYBE_KNOWN),
    (UNKNOWN, MAYBE_KNOWN),
    (HIGHLY_KNOWN, MAYBE_KNOWN),
]
BY_RELATION_COLUMNS = ["relation", "transition", "origin_pairs", "after_stage", "retest", "beyond_retest"]


def transitions_by_relation(origin: pd.DataFrame, new: pd.DataFrame, retest: pd.DataFrame | None) -> pd.DataFrame:
    """Table 3's key transitions (KEY_TRANSITIONS) per relation (All first): the pairs of the origin
    category, how many made the transition after the stage and on the retest, and the difference.
    `new` and `retest` are compared merged; without a matched retest (None: re-detection on the same
    prompts) its columns are empty."""
    require_columns(origin, ["question_id", "relation", "category"], "origin table")
    joined = origin[["question_id", "relation", "category"]].merge(
        _categories(new, "new table").assign(category=lambda t: merge_unknown(t["category"]).astype(str)),
        on="question_id",
        suffixes=("", "_new"),
    )
    if retest is not None:
        floor = _categories(retest, "retest table").assign(category=lambda t: merge_unknown(t["category"]).astype(str))
        joined = joined.merge(floor.rename(columns={"category": "category_retest"}), on="question_id")
    relations = [ALL, *sorted(joined["relation"].unique(), key=relation_sort_key)]
    rows = []
    for relation in relations:
        part = joined if relation == ALL else joined[joined["relation"] == relation]
        for source, target in KEY_TRANSITIONS:
            of_origin = part[part["category"].astype(str) == source]
            after = int((of_origin["category_new"] == target).sum())
            retested = int((of_origin["category_retest"] == target).sum()) if retest is not None else None
            rows.append(
                {
                    "relation": relation,
                    "transition": f"{source} -> {target}",
                    "origin_pairs": len(of_origin),
                    "after_stage": after,
                    "retest": retested,
                    "beyond_retest": after - retested if retested is not None else None,
                }
            )
    table = pd.DataFrame(rows, columns=BY_RELATION_COLUMNS)
    return table.astype({"retest": "Int64", "beyond_retest": "Int64"})


SEED_COLUMNS = [
    "model",
    "compared_with",
    "seeds",
    "accuracy_mean",
    "accuracy_sd",
    "difference_mean",
    "difference_sd",
    "difference_ci_low",
    "difference_ci_high",
    "p_value",
    "question_p",
    "beyond_noise",
    "per_seed",
]


def seed_spread(comparisons: dict[str, tuple[str, dict, dict]]) -> pd.DataFrame:
    """Each model over its training seeds: mean and spread of its accuracy, and of its paired
    difference from the state it is compared with in the same seed, tested against both noises a
    difference carries.

    `comparisons` maps a model to (the reference's name, {seed: results}, {seed: reference results}).
    Training noise: the t interval (and test) of the per-seed differences (scipy's `ttest_1samp`);
    the seeds are its replications, but they share the test questions, so it cannot see how those
    were drawn. Question noise: the paired t test over the questions of each question's accuracy
    averaged over the seeds (scipy's `ttest_rel`), the per-question test of Tables 7 and 8 with the
    training noise averaged out; pooling the seeds' answers as independent questions (a stratified
    McNemar or Cochran-Mantel-Haenszel) would count each question once per seed. A difference is
    beyond noise when both p < `SIGNIFICANCE`; where every seed gave the same difference there is no training
    spread to test, and the question test decides alone."""
    rows = []
    for model, (reference, results, references) in comparisons.items():
        seeds = sorted(results)
        accuracies = [accuracy(results[seed]["correct"])["accuracy"] for seed in seeds]
        paired = [paired_comparison(results[seed], references[seed]) for seed in seeds]
        differences = [p["difference"] for p in paired]
        if len(seeds) > 1 and len(set(differences)) > 1:
            test = stats.ttest_1samp(differences, 0.0)
            low, high = test.confidence_interval(CONFIDENCE)
            p_value = float(test.pvalue)
        else:  # one seed, or every seed the same difference: no spread to test against
            low = high = p_value = math.nan
        question_p = _averaged_question_p(results, references)
        training_passed = p_value < SIGNIFICANCE if len(set(differences)) > 1 else len(seeds) > 1
        rows.append(
            {
                "model": model,
                "compared_with": reference,
                "seeds": len(seeds),
                "accuracy_mean": float(pd.Series(accuracies).mean()),
                "accuracy_sd": float(pd.Series(accuracies).std(ddof=1)) if len(seeds) > 1 else math.nan,
                "difference_mean": float(pd.Series(differences).mean()),
                "difference_sd": float(pd.Series(differences).std(ddof=1)) if len(seeds) > 1 else math.nan,
                "difference_ci_low": float(low),
                "difference_ci_high": float(high),
                "p_value": p_value,
                "question_p": question_p,
                "beyond_noise": bool(training_passed and question_p < SIGNIFICANCE),
                "per_seed": "; ".join(
                    f"seed {seed}: {acc:.4g} ({p['difference']:+.4g}, McNemar p {p['mcnemar_p']:.3g})"
                    for seed, acc, p in zip(seeds, accuracies, paired)
                ),
            }
        )
    return pd.DataFrame(rows, columns=SEED_COLUMNS)


def _averaged_question_p(results: dict, references: dict) -> float:
    """The paired t test over the questions of their seed-averaged accuracies (1 where no question's
    average moved)."""

    def averaged(by_seed: dict) -> pd.DataFrame:
        stacked = pd.concat([_results(table, f"seed {seed}") for seed, table in by_seed.items()])
        return stacked.astype({"correct": float}).groupby("question_id", as_index=False)["correct"].mean()

    pairs = averaged(references).merge(averaged(results), on="question_id", validate="1:1")
    after, before = pairs["correct_y"].to_numpy(), pairs["correct_x"].to_numpy()
    if len(pairs) < 2 or not (after - before).any():
        return 1.0
    return float(stats.ttest_rel(after, before).pvalue)
