"""The one-line reading of each table on the report page: what it shows for this run, computed from
its numbers. Each takes its table and the run's others (the retest's reading says whether a floor
was subtracted); `gradual.tables.TABLES` says which reading goes with which table."""

from collections.abc import Callable, Mapping

import pandas as pd

from gradual.analysis import SIGNIFICANCE
from gradual.categories import HIGHLY_KNOWN, MAYBE_KNOWN, WEAKLY_KNOWN

Tables = Mapping[str, pd.DataFrame]
Reading = Callable[[pd.DataFrame, Tables], str]


def _paired_reading(row: pd.Series) -> str:
    verdict = "beyond noise" if row["mcnemar_p"] < SIGNIFICANCE else "within noise"
    return (
        f"{row['model']} vs {row['compared_with']}: {row['difference']:+.4f} "
        f"[{row['difference_ci_low']:+.4f}, {row['difference_ci_high']:+.4f}], "
        f"{row['gained']} gained / {row['lost']} lost, McNemar p = {row['mcnemar_p']:.3g} ({verdict})"
    )


def accuracy(table: pd.DataFrame, tables: Tables) -> str:
    """Tables 7, 8 and 11: each compared model against its reference."""
    compared = table.dropna(subset=["mcnemar_p"]) if "mcnemar_p" in table else table.iloc[:0]
    return "; ".join(_paired_reading(row) for _, row in compared.iterrows()) or "No comparison."


def categories(table: pd.DataFrame, tables: Tables) -> str:
    counts = table.set_index("relation").loc["Total"]
    listed = ", ".join(f"{value} {name}" for name, value in counts.items() if name != "Total")
    return listed + f" of {counts['Total']} train questions."


def _transition_reading(table: pd.DataFrame, source: str, target: str, what: str, difference: bool = False) -> str:
    """A count ("k of n pairs became") or, for a table of differences whose totals are zero, a signed difference."""
    rows = table.set_index("origin")
    if source not in rows.index or target not in rows.columns:
        return f"No {source} -> {target} transitions in {what}."
    if difference:
        return f"{source} -> {target}: {rows.loc[source, target]:+d} {what}."
    return f"{rows.loc[source, target]} of {rows.loc[source, 'Total']} {source} pairs became {target} {what}."


def transitions(what: str, difference: bool = False) -> Reading:
    """Tables 3 and 4 and their difference: the paper's central cell first, then MaybeKnown -> HighlyKnown."""

    def reading(table: pd.DataFrame, tables: Tables) -> str:
        return " ".join(
            _transition_reading(table, source, target, what, difference)
            for source, target in ((WEAKLY_KNOWN, MAYBE_KNOWN), (MAYBE_KNOWN, HIGHLY_KNOWN))
        )

    return reading


def retest(table: pd.DataFrame, tables: Tables) -> str:
    """Table 4, and where no floor is subtracted from Table 3, why."""
    line = transitions("on the retest")(table, tables)
    if "table3-minus-table4" in tables:
        return line
    return line + (
        " Re-detection used the untuned model's own prompts (method.redetect_prompts: same): an unchanged model "
        "gives the same greedy answers on them, so Table 3 has no exemplar noise and nothing is subtracted."
    )


def per_group(column: str, label: str, what: str, difference: bool = False) -> Reading:
    """MaybeKnown -> HighlyKnown in each part of a stacked transition table (per strategy, per control)."""

    def reading(table: pd.DataFrame, tables: Tables) -> str:
        return " ".join(
            f"{label} {key}: " + _transition_reading(part, MAYBE_KNOWN, HIGHLY_KNOWN, what, difference)
            for key, part in table.groupby(column)
        )

    return reading


def stage1_retest(table: pd.DataFrame, tables: Tables) -> str:
    return _transition_reading(table, MAYBE_KNOWN, HIGHLY_KNOWN, "on the retest")


def category_counts(table: pd.DataFrame, tables: Tables) -> str:
    """Table 10: HighlyKnown pairs per stage."""
    counts = ", ".join(f"{row['stage']} {row.get(HIGHLY_KNOWN, 0)}" for _, row in table.iterrows())
    return f"HighlyKnown train pairs per stage: {counts}."


def paper_graph(table: pd.DataFrame, tables: Tables) -> str:
    row = table[table["relation"] == "All"].iloc[0]  # keeps the counts' integer types
    if not row["reclassified"]:
        return f"No WeaklyKnown pair became MaybeKnown; {row['initial']} Initial nodes."
    return (
        f"{row['linked_reclassified']} of {row['reclassified']} Reclassified nodes are joined to the "
        f"{row['initial']} Initial nodes ({row['linked_fraction']:.0%}; the paper, Qwen2-7B: 3,968 of 5,121, 77%)."
    )


def _graph_reading(row: pd.Series) -> str:
    what = f"{row['comparison']}, origin {row['origin']}"
    if not row["reclassified"]:
        return f"{what}: no pair was reclassified to MaybeKnown ({row['control']} stayed)."
    return (
        f"{what}: {row['linked_reclassified']} of {row['reclassified']} reclassified pairs linked to "
        f"Initial entities vs {row['linked_control']} of {row['control']} pairs that stayed, "
        f"Fisher p = {row['p_value']:.3g}."
    )


def graph_control(table: pd.DataFrame, tables: Tables) -> str:
    pairs = table[(table["relation"] == "All") & (table["unit"] == "pairs")]
    return " ".join(_graph_reading(row) for _, row in pairs.iterrows())


def knowledge_gain(table: pd.DataFrame, tables: Tables) -> str:
    rows = table.set_index(["pairs", "baseline", "stage"])
    if ("all", "untuned", "stage 2") not in rows.index:
        return "One stage only: no two-stage gain to compare."
    figures = [
        (label, rows.loc[(pairs, baseline, "stage 2"), "gain_vs_stage1"])
        for label, pairs, baseline in [
            ("the paper's way (every train pair, against the untuned model)", "all", "untuned"),
            ("on pairs never trained on", "never trained on", "untuned"),
            ("against the retest", "all", "retest"),
            ("both", "never trained on", "retest"),
        ]
        if (pairs, baseline, "stage 2") in rows.index  # no retest baseline with `same` re-detection prompts
    ]
    return (
        "Two-stage gain in HighlyKnown pairs against one-stage's: "
        + "; ".join(
            f"{label} {value:+.0%}" if pd.notna(value) else f"{label} undefined (stage 1 gained none)"
            for label, value in figures
        )
        + " (the paper: +24%)."
    )


def by_relation(table: pd.DataFrame, tables: Tables) -> str:
    every = table[table["relation"] == "All"].set_index("transition")
    column = "beyond_retest" if every["beyond_retest"].notna().any() else "after_stage"
    what = "beyond the retest" if column == "beyond_retest" else "after stage 1 (same prompts: no floor)"
    counts = ", ".join(f"{name} {int(value):+d}" for name, value in every[column].items())
    return f"All relations, {what}: {counts}."


def answer_prior(table: pd.DataFrame, tables: Tables) -> str:
    every = table[table["relation"] == "All"].set_index("state")["top_answer_share"]
    return (
        "Share of greedy answers that are their relation's most frequent train answer: "
        + ", ".join(f"{state} {share:.1%}" for state, share in every.items())
        + "."
    )


def reclassified_prior(table: pd.DataFrame, tables: Tables) -> str:
    groups = table.set_index("group")
    if not groups.loc["reclassified", "pairs"]:
        return "No pair became MaybeKnown after stage 1."
    control = "control (stayed never right)"
    return (
        f"Gold answer among its relation's five most frequent: {groups.loc['reclassified', 'share']:.0%} of the "
        f"{groups.loc['reclassified', 'pairs']} reclassified pairs, {groups.loc[control, 'share']:.0%} "
        f"of the {groups.loc[control, 'pairs']} that stayed (Fisher p = {groups.loc['reclassified', 'p_value']:.3g})."
    )


def epoch_selection(table: pd.DataFrame, tables: Tables) -> str:
    undecided = table[~table["decided"].astype(bool)]
    if not len(undecided):
        return "Every state's chosen epoch is its last, or differs from it beyond the dev set's noise."
    return (
        "The dev set could not tell the chosen epoch from the last for "
        + ", ".join(
            f"{row.state} (epoch {row.best_epoch} vs {row.last_epoch}, McNemar p = {row.mcnemar_p:.3g})"
            for row in undecided.itertuples()
        )  # fmt: skip
        + ": the chosen epoch is no better supported than the last (ties go to the earliest), read these states "
        "as any of their epochs."
    )


def _seed_reading(row: pd.Series) -> str:
    if pd.isna(row["difference_ci_low"]):
        return f"{row['model']} vs {row['compared_with']}: {row['difference_mean']:+.4f} in every seed"
    verdict = "beyond noise" if row["beyond_noise"] else "within noise"
    return (
        f"{row['model']} vs {row['compared_with']} over {row['seeds']} seeds: {row['difference_mean']:+.4f} "
        f"[{row['difference_ci_low']:+.4f}, {row['difference_ci_high']:+.4f}], training p = {row['p_value']:.3g}, "
        f"question p = {row['question_p']:.3g} ({verdict})"
    )


def seeds(table: pd.DataFrame, tables: Tables) -> str:
    return "; ".join(_seed_reading(row) for _, row in table.iterrows())


def accuracy_by_category(table: pd.DataFrame, tables: Tables) -> str:
    models = [c for c in table.columns if c not in ("category", "n")]
    rows = table.set_index("category")
    if MAYBE_KNOWN not in rows.index:
        return "No test question is MaybeKnown for the untuned model."
    return (
        "On the untuned model's MaybeKnown test questions: "
        + ", ".join(f"{model} {rows.loc[MAYBE_KNOWN, model]:.4g}" for model in models)
        + "."
    )


def epoch_sweep(table: pd.DataFrame, tables: Tables) -> str:
    best = table.loc[table["max_test_accuracy"].idxmax()]
    return (
        f"Best test accuracy {best['max_test_accuracy']:.4g} with {int(best['epochs'])} epochs "
        f"(at epoch {int(best['best_epoch'])})."
    )


def training_metrics(table: pd.DataFrame, tables: Tables) -> str:
    return f"{table['state'].nunique()} trained states, {len(table)} epochs in all."
