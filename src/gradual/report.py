"""The run report: one HTML page that opens from disk (images embedded) and shows what was run,
the paper's tables for this run with a one-line reading each, and plots.

Every number on the page comes from a results file: the tables as written by the tables step,
the category counts per relation, provenance.json, the dataset summary and the benchmark files.
"""

import base64
import html
import io
import math
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import CenteredNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from gradual.categories import ALL_CATEGORIES
from gradual.tables import RunShape

TITLES = {
    "table2-categories": "Table 2: categories of the train questions per relation (untuned model)",
    "table3-transitions-stage1": "Table 3: category transitions of the train questions after stage 1 "
    "(rows: the untuned model's categories)",
    "table4-transitions-retest": "Table 4: transitions on a retest of the untuned model (noise baseline)",
    "table3-minus-table4": "Table 3 minus Table 4: transitions beyond retest noise (both on fresh prompts)",
    "transitions-by-relation": "Table 3's key transitions per relation, against the retest (ours)",
    "retest-stage1": "Transitions on a retest of stage 1 (ours): the noise floor of Table 12",
    "table12-minus-retest": "Table 12 minus the retest of stage 1: stage-2 transitions beyond noise (ours)",
    "transitions-controls": "Transitions after each stage-2 control, from stage 1's categories, as Table 12 (ours)",
    "answer-prior": "Answer prior: share of greedy answers that are the relation's most frequent train answer (ours)",
    "answer-prior-reclassified": "Answer prior of the reclassified pairs: gold answer among the relation's five "
    "most frequent, against the control (ours)",
    "epoch-selection": "Epoch selection: could the dev set tell the chosen epoch from the last? (ours)",
    "seeds": "Training seeds: each model's accuracy and paired difference over the seeds (ours)",
    "table5-entity-graph": "Table 5: nodes of the graph of the Initial and the WeaklyKnown -> MaybeKnown pairs",
    "entity-graph-control": "Entity graph with a control (ours): reclassified pairs linked to Initial entities "
    "against pairs of the same origin that stayed",
    "knowledge-gain": "Knowledge gain: HighlyKnown train pairs gained (the paper's 24%, from Table 10), "
    "also on pairs never trained on and against the retest",
    "table6-epoch-sweep": "Table 6: one-stage fine-tuning for different epoch counts",
    "table7-accuracy": "Table 7: test accuracy of the untuned, one-stage and two-stage models",
    "table8-strategies": "Table 8: stage-2 data strategies against one-stage (and our controls against strategy 5)",
    "table9-accuracy-by-category": "Table 9: test accuracy per category of the untuned model",
    "table10-category-counts": "Table 10: train categories after each stage",
    "table11-rounds": "Table 11: rounds of gradual fine-tuning",
    "table12-transitions-stage2": "Table 12: category transitions of the train questions after stage 2",
    "training-metrics": "Training: loss and accuracy per epoch of every trained state",
}
ORDER = [
    "table2-categories",
    "table7-accuracy",
    "seeds",
    "table8-strategies",
    "table11-rounds",
    "table9-accuracy-by-category",
    "table3-transitions-stage1",
    "table4-transitions-retest",
    "table3-minus-table4",
    "transitions-by-relation",
    "table12-transitions-stage2",
    "retest-stage1",
    "table12-minus-retest",
    "transitions-controls",
    "table10-category-counts",
    "knowledge-gain",
    "table5-entity-graph",
    "entity-graph-control",
    "answer-prior",
    "answer-prior-reclassified",
    "table6-epoch-sweep",
    "epoch-selection",
    "training-metrics",
]
FIGURE_TITLES = {
    "accuracy": "Test accuracy with 95% intervals: main models (Table 7), strategies (Table 8), rounds (Table 11)",
    "transitions": "Category transitions of the train questions: stage 1, retest, their difference, stage 2",
    "categories-per-relation": "Train categories per relation: untuned model and after each round",
    "accuracy-per-epoch": "Dev accuracy after each epoch of every trained state (test too where scored per epoch)",
    "entity-graph": "Entity graph with a control: share of pairs linked to Initial entities, reclassified vs "
    "stayed, per origin (95% intervals)",
    "accuracy-by-category": "Table 9: test accuracy per category of the untuned model",
    "transitions-by-relation": "Stage 1's key transitions per relation beyond the retest (fresh prompts), or as "
    "counted (same prompts)",
}
COLOURS = dict(zip(ALL_CATEGORIES, ["#1b7837", "#7fbf7b", "#f1a340", "#b35806", "#998ec3"]))
NUMBER_FORMAT = "{:.4g}".format


def figure_names(shape: RunShape) -> list[str]:
    """The plots a run of this shape has (each also a PNG output of the report rule)."""
    names = ["accuracy", "transitions", "transitions-by-relation", "categories-per-relation", "accuracy-per-epoch"]
    return names + ["entity-graph"] + (["accuracy-by-category"] if shape.detects_test else [])


def _fraction_errors(table: pd.DataFrame, value: str, low: str, high: str) -> np.ndarray:
    return np.vstack([table[value] - table[low], table[high] - table[value]]).clip(min=0)


def _accuracy_plot(ax, table: pd.DataFrame, title: str) -> None:
    positions = np.arange(len(table))
    ax.errorbar(
        positions, table["accuracy"], yerr=_fraction_errors(table, "accuracy", "ci_low", "ci_high"),
        fmt="o", capsize=4,
    )  # fmt: skip
    ax.set_xticks(positions, table["model"], rotation=20, ha="right")
    ax.set_title(title)
    ax.set_ylabel("test accuracy (95% CI)")
    ax.grid(axis="y", alpha=0.3)


def _heatmap(ax, table: pd.DataFrame, title: str, difference: bool = False) -> None:
    body = table[table["origin"] != "Total"].drop(columns=["origin", "Total", "strategy"], errors="ignore")
    values = body.to_numpy(dtype=float)
    norm = CenteredNorm() if difference else None
    ax.imshow(values, cmap="RdBu" if difference else "Blues", norm=norm, aspect="auto")
    for (row, column), value in np.ndenumerate(values):
        ax.text(column, row, f"{value:+.0f}" if difference else f"{value:.0f}", ha="center", va="center", fontsize=8)
    origins = table.loc[table["origin"] != "Total", "origin"]
    ax.set_xticks(range(values.shape[1]), body.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), origins, fontsize=8)
    ax.set_title(title, fontsize=10)


def _stacked_categories(ax, counts: pd.DataFrame, title: str) -> None:
    counts = counts[counts["relation"] != "Total"]
    bottom = np.zeros(len(counts))
    for category in [c for c in ALL_CATEGORIES if c in counts.columns]:
        ax.bar(counts["relation"], counts[category], bottom=bottom, label=category, color=COLOURS[category])
        bottom += counts[category].to_numpy()
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", rotation=45, labelsize=8)


def _grouped_bars(ax, table: pd.DataFrame, labels: str, series: list[str]) -> None:
    positions = np.arange(len(table))
    width = 0.8 / len(series)
    for offset, name in enumerate(series):
        ax.bar(positions + offset * width - 0.4 + width / 2, table[name], width, label=name)
    ax.set_xticks(positions, table[labels])


def make_figures(shape: RunShape, tables: dict[str, pd.DataFrame], counts: dict[str, pd.DataFrame]) -> dict:
    """Every plot of `figure_names(shape)` as a matplotlib Figure, from the run's tables and the
    category counts per relation of the untuned model and each round (`counts`, label -> Table 2)."""
    figures = {}

    accuracy_tables = [name for name in ("table7-accuracy", "table8-strategies", "table11-rounds") if name in tables]
    fig = Figure(figsize=(4.2 * len(accuracy_tables), 3.8), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(accuracy_tables), squeeze=False)[0], accuracy_tables):
        _accuracy_plot(ax, tables[name], TITLES[name].split(":")[0])
    figures["accuracy"] = fig

    heatmaps = [
        (tables["table3-transitions-stage1"], "stage 1 (Table 3)", False),
        (tables["table4-transitions-retest"], "retest (Table 4)", False),
    ]
    if "table3-minus-table4" in tables:  # fresh re-detection prompts: the retest is a matched floor
        heatmaps.append((tables["table3-minus-table4"], "stage 1 minus retest", True))
    if "table12-transitions-stage2" in tables:
        stage2 = tables["table12-transitions-stage2"]
        heatmaps += [(part, f"stage 2, strategy {k} (Table 12)", False) for k, part in stage2.groupby("strategy")]
    columns = min(len(heatmaps), 4)
    fig = Figure(figsize=(3.6 * columns, 3.2 * math.ceil(len(heatmaps) / columns)), layout="constrained")
    axes = fig.subplots(math.ceil(len(heatmaps) / columns), columns, squeeze=False).ravel()
    for ax, (table, title, difference) in zip(axes, heatmaps):
        _heatmap(ax, table, title, difference)
    for ax in axes[len(heatmaps) :]:
        ax.set_visible(False)
    figures["transitions"] = fig

    by_relation = tables["transitions-by-relation"]
    by_relation = by_relation[by_relation["relation"] != "All"]
    value = "beyond_retest" if by_relation["beyond_retest"].notna().any() else "after_stage"
    wide = by_relation.pivot(index="relation", columns="transition", values=value).astype(float)
    order = {name: list(dict.fromkeys(by_relation[name])) for name in ("relation", "transition")}
    wide = wide.reindex(index=order["relation"], columns=order["transition"])
    fig = Figure(figsize=(max(6, 0.6 * len(wide) + 2), 3.8), layout="constrained")
    ax = fig.subplots()
    _grouped_bars(ax, wide.reset_index(), "relation", list(wide.columns))
    ax.axhline(0, color="#444", linewidth=0.8)
    ax.set_ylabel("pairs beyond the retest" if value == "beyond_retest" else "pairs after stage 1")
    ax.tick_params(axis="x", rotation=45, labelsize=8)
    ax.legend(fontsize=7)
    figures["transitions-by-relation"] = fig

    fig = Figure(figsize=(4.5 * len(counts), 3.8), layout="constrained")
    axes = fig.subplots(1, len(counts), squeeze=False, sharey=True)[0]
    for ax, (label, table) in zip(axes, counts.items()):
        _stacked_categories(ax, table, label)
    axes[0].set_ylabel("train questions")
    present = [c for c in ALL_CATEGORIES if any(c in table.columns for table in counts.values())]
    fig.legend([Patch(color=COLOURS[c]) for c in present], present, loc="outside right upper", fontsize=8)
    figures["categories-per-relation"] = fig

    metrics = tables["training-metrics"]
    # test is scored per epoch only where a table reads it (gradual.stages.epoch_splits)
    splits = ["dev"] + (["test"] if metrics["test_accuracy"].notna().any() else [])
    fig = Figure(figsize=(5 * len(splits), 3.8), layout="constrained")
    axes = fig.subplots(1, len(splits), squeeze=False)[0]
    cycle = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    colour = {state: cycle[i % len(cycle)] for i, state in enumerate(metrics["state"].unique())}  # same in both panels
    for ax, split in zip(axes, splits):
        measured = metrics[metrics[f"{split}_accuracy"].notna()]
        for state, rows in measured.groupby("state", sort=False):
            ax.plot(rows["epoch"], rows[f"{split}_accuracy"], marker="o", label=state, color=colour[state])
        ax.set_title(f"{split} accuracy per epoch" + ("" if split == "dev" else " (states scored on test per epoch)"))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    figures["accuracy-per-epoch"] = fig

    links = tables["entity-graph-control"]
    links = links[(links["relation"] == "All") & (links["unit"] == "pairs")].reset_index(drop=True)
    fig = Figure(figsize=(max(5, 2.5 * len(links)), 3.8), layout="constrained")
    ax = fig.subplots()
    positions = np.arange(len(links))
    for offset, (group, prefix) in enumerate([("reclassified", "linked"), ("stayed (control)", "control")]):
        value = "linked_fraction" if prefix == "linked" else "control_fraction"
        errors = _fraction_errors(links, value, f"{prefix}_ci_low", f"{prefix}_ci_high")
        ax.bar(positions + (offset - 0.5) * 0.35, links[value], 0.35, yerr=errors, capsize=4, label=group)
    ax.set_xticks(positions, links["comparison"] + "\n" + links["origin"], fontsize=8)
    ax.set_ylabel("share of pairs linked (95% CI)")
    ax.legend(fontsize=8)
    figures["entity-graph"] = fig

    if shape.detects_test:
        table = tables["table9-accuracy-by-category"]
        models = [c for c in table.columns if c not in ("category", "n")]
        fig = Figure(figsize=(7, 3.8), layout="constrained")
        ax = fig.subplots()
        _grouped_bars(ax, table, "category", models)
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=8)
        figures["accuracy-by-category"] = fig

    assert set(figures) == set(figure_names(shape)), list(figures)
    return {name: figures[name] for name in figure_names(shape)}


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def benchmark_summary(benchmarks: list[Path], logs: Path) -> pd.DataFrame:
    """Per rule (the first folder under the run's logs): jobs, total and longest wall seconds, peak memory."""
    rows = []
    for path in benchmarks:
        table = pd.read_csv(path, sep="\t")
        rule = Path(path).relative_to(logs).parts[0].removesuffix(".benchmark.tsv")
        rows.append(
            {"rule": rule, "seconds": float(table["s"].iloc[-1]), "max_rss_mb": float(table["max_rss"].iloc[-1])}
        )
    if not rows:
        return pd.DataFrame(columns=["rule", "jobs", "total_s", "longest_s", "peak_rss_mb"])
    frame = pd.DataFrame(rows)
    summary = frame.groupby("rule", sort=True).agg(
        jobs=("seconds", "size"), total_s=("seconds", "sum"), longest_s=("seconds", "max"),
        peak_rss_mb=("max_rss_mb", "max"),
    )  # fmt: skip
    return summary.sort_values("total_s", ascending=False).reset_index()


def _relation_reading(table: pd.DataFrame) -> str:
    every = table[table["relation"] == "All"].set_index("transition")
    column = "beyond_retest" if every["beyond_retest"].notna().any() else "after_stage"
    what = "beyond the retest" if column == "beyond_retest" else "after stage 1 (same prompts: no floor)"
    return "All relations, " + what + ": " + ", ".join(f"{name} {int(value):+d}" for name, value in every[column].items()) + "."


def _prior_reading(table: pd.DataFrame) -> str:
    every = table[table["relation"] == "All"].set_index("state")["top_answer_share"]
    return "Share of greedy answers that are their relation's most frequent train answer: " + ", ".join(
        f"{state} {share:.1%}" for state, share in every.items()
    ) + "."


def _seed_reading(row: pd.Series) -> str:
    if pd.isna(row["difference_ci_low"]):
        return f"{row['model']} vs {row['compared_with']}: {row['difference_mean']:+.4f} in every seed"
    verdict = "beyond noise" if row["beyond_noise"] else "within noise"
    return (
        f"{row['model']} vs {row['compared_with']} over {row['seeds']} seeds: {row['difference_mean']:+.4f} "
        f"[{row['difference_ci_low']:+.4f}, {row['difference_ci_high']:+.4f}], training p = {row['p_value']:.3g}, "
        f"question p = {row['question_p']:.3g} ({verdict})"
    )


def _paired_reading(row: pd.Series) -> str:
    verdict = "beyond noise" if row["mcnemar_p"] < 0.05 else "within noise"
    return (
        f"{row['model']} vs {row['compared_with']}: {row['difference']:+.4f} "
        f"[{row['difference_ci_low']:+.4f}, {row['difference_ci_high']:+.4f}], "
        f"{row['gained']} gained / {row['lost']} lost, McNemar p = {row['mcnemar_p']:.3g} ({verdict})"
    )


def _transition_reading(table: pd.DataFrame, source: str, target: str, what: str, difference: bool = False) -> str:
    """A count ("k of n pairs became") or, for a table of differences whose totals are zero, a signed difference."""
    rows = table.set_index("origin")
    if source not in rows.index or target not in rows.columns:
        return f"No {source} -> {target} transitions in {what}."
    if difference:
        return f"{source} -> {target}: {rows.loc[source, target]:+d} {what}."
    return f"{rows.loc[source, target]} of {rows.loc[source, 'Total']} {source} pairs became {target} {what}."


def _graph_reading(row: pd.Series) -> str:
    what = f"{row['comparison']}, origin {row['origin']}"
    if not row["reclassified"]:
        return f"{what}: no pair was reclassified to MaybeKnown ({row['control']} stayed)."
    return (
        f"{what}: {row['linked_reclassified']} of {row['reclassified']} reclassified pairs linked to "
        f"Initial entities vs {row['linked_control']} of {row['control']} pairs that stayed, "
        f"Fisher p = {row['p_value']:.3g}."
    )


def _paper_graph_reading(table: pd.DataFrame) -> str:
    row = table[table["relation"] == "All"].iloc[0]  # keeps the counts' integer types
    if not row["reclassified"]:
        return f"No WeaklyKnown pair became MaybeKnown; {row['initial']} Initial nodes."
    return (
        f"{row['linked_reclassified']} of {row['reclassified']} Reclassified nodes are joined to the "
        f"{row['initial']} Initial nodes ({row['linked_fraction']:.0%}; the paper, Qwen2-7B: 3,968 of 5,121, 77%)."
    )


def _gain_reading(table: pd.DataFrame) -> str:
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
    return "Two-stage gain in HighlyKnown pairs against one-stage's: " + "; ".join(
        f"{label} {value:+.0%}" if pd.notna(value) else f"{label} undefined (stage 1 gained none)"
        for label, value in figures
    ) + " (the paper: +24%)."


def readings(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """One line per table saying what it shows for this run, computed from its numbers."""
    lines = {}
    for name in ("table7-accuracy", "table8-strategies", "table11-rounds"):
        if name in tables:
            compared = tables[name].dropna(subset=["mcnemar_p"]) if "mcnemar_p" in tables[name] else []
            lines[name] = "; ".join(_paired_reading(row) for _, row in compared.iterrows()) or "No comparison."
    counts = tables["table2-categories"].set_index("relation").loc["Total"]
    lines["table2-categories"] = ", ".join(f"{value} {name}" for name, value in counts.items() if name != "Total") + (
        f" of {counts['Total']} train questions."
    )
    for name, what, difference in [
        ("table3-transitions-stage1", "after stage 1", False),
        ("table4-transitions-retest", "on the retest", False),
        ("table3-minus-table4", "beyond retest noise (Table 3 minus Table 4)", True),
    ]:
        if name in tables:
            lines[name] = " ".join(
                _transition_reading(tables[name], source, target, what, difference)
                for source, target in (("WeaklyKnown", "MaybeKnown"), ("MaybeKnown", "HighlyKnown"))
            )
    if "table12-transitions-stage2" in tables:
        stage2 = tables["table12-transitions-stage2"]
        lines["table12-transitions-stage2"] = " ".join(
            f"Strategy {k}: " + _transition_reading(part, "MaybeKnown", "HighlyKnown", "after stage 2")
            for k, part in stage2.groupby("strategy")
        )
    if "transitions-controls" in tables:
        lines["transitions-controls"] = " ".join(
            f"Control {c}: " + _transition_reading(part, "MaybeKnown", "HighlyKnown", "after the control")
            for c, part in tables["transitions-controls"].groupby("control")
        )
    stages = tables["table10-category-counts"]
    lines["table10-category-counts"] = (
        "HighlyKnown train pairs per stage: "
        + ", ".join(f"{row['stage']} {row.get('HighlyKnown', 0)}" for _, row in stages.iterrows())
        + "."
    )
    lines["table5-entity-graph"] = _paper_graph_reading(tables["table5-entity-graph"])
    graph = tables["entity-graph-control"]
    lines["entity-graph-control"] = " ".join(
        _graph_reading(row) for _, row in graph[(graph["relation"] == "All") & (graph["unit"] == "pairs")].iterrows()
    )
    lines["knowledge-gain"] = _gain_reading(tables["knowledge-gain"])
    if "table3-minus-table4" not in tables:
        lines["table4-transitions-retest"] += (
            " Re-detection used the untuned model's own prompts (method.redetect_prompts: same): an unchanged model "
            "gives the same greedy answers on them, so Table 3 has no exemplar noise and nothing is subtracted."
        )
    if "table12-minus-retest" in tables:
        lines["retest-stage1"] = _transition_reading(tables["retest-stage1"], "MaybeKnown", "HighlyKnown", "on the retest")
        lines["table12-minus-retest"] = " ".join(
            f"Strategy {k}: " + _transition_reading(part, "MaybeKnown", "HighlyKnown", "beyond stage 1's retest", difference=True)
            for k, part in tables["table12-minus-retest"].groupby("strategy")
        )
    lines["transitions-by-relation"] = _relation_reading(tables["transitions-by-relation"])
    lines["answer-prior"] = _prior_reading(tables["answer-prior"])
    groups = tables["answer-prior-reclassified"].set_index("group")
    lines["answer-prior-reclassified"] = (
        f"Gold answer among its relation's five most frequent: {groups.loc['reclassified', 'share']:.0%} of the "
        f"{groups.loc['reclassified', 'pairs']} reclassified pairs, {groups.loc['control (stayed never right)', 'share']:.0%} "
        f"of the {groups.loc['control (stayed never right)', 'pairs']} that stayed (Fisher p = "
        f"{groups.loc['reclassified', 'p_value']:.3g})."
        if groups.loc["reclassified", "pairs"]
        else "No pair became MaybeKnown after stage 1."
    )
    selection = tables["epoch-selection"]
    undecided = selection[~selection["decided"].astype(bool)]
    lines["epoch-selection"] = (
        "The dev set could not tell the chosen epoch from the last for "
        + ", ".join(f"{row.state} (epoch {row.best_epoch} vs {row.last_epoch}, McNemar p = {row.mcnemar_p:.3g})"
                    for row in undecided.itertuples())  # fmt: skip
        + ": the chosen epoch is no better supported than the last (ties go to the earliest), read these states "
        "as any of their epochs."
        if len(undecided)
        else "Every state's chosen epoch is its last, or differs from it beyond the dev set's noise."
    )
    if "seeds" in tables:
        lines["seeds"] = "; ".join(_seed_reading(row) for _, row in tables["seeds"].iterrows())
    if "table9-accuracy-by-category" in tables:
        table = tables["table9-accuracy-by-category"]
        models = [c for c in table.columns if c not in ("category", "n")]
        rows = table.set_index("category")
        lines["table9-accuracy-by-category"] = (
            "On the untuned model's MaybeKnown test questions: "
            + ", ".join(f"{model} {rows.loc['MaybeKnown', model]:.4g}" for model in models)
            + "."
            if "MaybeKnown" in rows.index
            else "No test question is MaybeKnown for the untuned model."
        )
    if "table6-epoch-sweep" in tables:
        sweep = tables["table6-epoch-sweep"]
        best = sweep.loc[sweep["max_test_accuracy"].idxmax()]
        lines["table6-epoch-sweep"] = (
            f"Best test accuracy {best['max_test_accuracy']:.4g} with {int(best['epochs'])} epochs "
            f"(at epoch {int(best['best_epoch'])})."
        )
    metrics = tables["training-metrics"]
    lines["training-metrics"] = f"{metrics['state'].nunique()} trained states, {len(metrics)} epochs in all."
    return lines


def _table_html(name: str, table: pd.DataFrame) -> str:
    """The table with 4 significant digits; missing values (float NaN or integer <NA>) empty."""
    nullable = [c for c in table.columns if isinstance(table[c].dtype, pd.api.extensions.ExtensionDtype)]
    table = table.astype({c: object for c in nullable})
    table[nullable] = table[nullable].where(table[nullable].notna(), "")
    body = table.to_html(index=False, table_id=name, float_format=NUMBER_FORMAT, na_rep="", border=0, classes="data")
    return f'<div class="scroll">{body}</div>'  # wide tables scroll rather than spill over the page


def _definition_list(items: dict) -> str:
    rows = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in items.items())
    return f"<dl>{rows}</dl>"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } .headline { font-size: 1.15em; background: #f3f6fa; padding: 0.8em; border-radius: 6px; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
table.data th, table.data td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
table.data th:first-child, table.data td:first-child { text-align: left; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; font-size: 0.9em; }
.scroll { overflow-x: auto; } dt { font-weight: 600; } dd { margin: 0; } img { max-width: 100%; }
.reading { color: #444; font-style: italic; }
"""


def _project(project: dict | None) -> str:
    if not project:
        return "not a git working copy"
    return f"commit {project['commit'][:12]}" + (" with uncommitted changes" if project["dirty"] else "")


def headline(tables: dict[str, pd.DataFrame]) -> str:
    """The run's answer in one sentence: did the last stage beat the one before beyond noise? Over
    several training seeds, by both the seeds' spread and the questions (`analysis.seed_spread`)."""
    table = tables["table7-accuracy"].set_index("model")
    model = "two-stage" if "two-stage" in table.index else "one-stage"
    if "seeds" in tables:
        seeds = tables["seeds"].set_index("model").loc[model]
        verdict = ("beats" if seeds["difference_mean"] > 0 else "does worse than") if seeds["beyond_noise"] else (
            "does not differ beyond noise from"
        )  # fmt: skip
        return (
            f"{model.capitalize()} {verdict} {seeds['compared_with']} over {seeds['seeds']} training seeds: mean "
            f"accuracy difference {seeds['difference_mean']:+.4g} (95% t interval over the seeds "
            f"{seeds['difference_ci_low']:+.4g} to {seeds['difference_ci_high']:+.4g}, p = {seeds['p_value']:.3g}; "
            f"over the questions, seed-averaged, p = {seeds['question_p']:.3g}); per seed {seeds['per_seed']}."
        )
    row = table.loc[model]
    verdict = (
        "beats"
        if row["mcnemar_p"] < 0.05 and row["difference"] > 0
        else ("does worse than" if row["mcnemar_p"] < 0.05 else "does not differ beyond noise from")
    )
    return (
        f"{model.capitalize()} {verdict} {row['compared_with']} on the test questions: accuracy "
        f"{row['accuracy']:.4g} vs {table.loc[row['compared_with'], 'accuracy']:.4g}, difference "
        f"{row['difference']:+.4g} (95% CI {row['difference_ci_low']:+.4g} to {row['difference_ci_high']:+.4g}), "
        f"exact McNemar p = {row['mcnemar_p']:.3g} ({row['gained']} questions gained, {row['lost']} lost)."
    )


def run_facts(provenance: dict, summary: dict) -> dict[str, str]:
    """What was run, from the run's provenance and dataset summary."""
    config = provenance["config"]
    devices = sorted(
        {f"{m.get('backend')} on {m.get('device')} ({m.get('dtype')})" for m in provenance["generation"].values() if m}
    )
    kept = {split: counts.get("kept") for split, counts in summary["splits"].items()}
    return {
        "run": config["run"],
        "model": f"{config['model']['name']} ({config['model']['source']})",
        "dataset": f"{config['dataset']['name']} ({config['dataset']['source']})",
        "relations": ", ".join(summary["relations"]),
        "questions": ", ".join(f"{split} {n}" for split, n in kept.items()),
        "detection": f"{config['detection']['n_prompts']} prompts x {config['detection']['k_shot']}-shot, "
        f"{config['generation']['n_samples']} samples at T={config['generation']['temperature']}",
        "method": f"{config['method']['rounds']} rounds, strategies {config['method']['strategies']}, "
        f"controls {config['method']['controls'] or 'none'}, replay {config['method']['replay_ratio']}, "
        f"re-detection on {config['method']['redetect_prompts']} prompts",
        "seeds": ", ".join(
            f"{section}.{key} {config[section][key]}"
            for section, key in [
                ("dataset", "seed"),
                ("detection", "seed"),
                ("detection", "retest_seed"),
                ("generation", "seed"),
                ("evaluation", "prompt_seed"),
                ("training", "seeds"),
            ]
        ),  # fmt: skip
        "generation": "; ".join(devices),
        "training": "; ".join(
            sorted({f"{m.get('device')} ({m.get('dtype')})" for m in provenance.get("training", {}).values() if m})
        ),
        "versions": ", ".join(f"{package} {version}" for package, version in provenance["versions"].items() if version),
        "project": _project(provenance.get("project")),
    }


def render(
    facts: dict[str, str],
    tables: dict[str, pd.DataFrame],
    figures: dict[str, bytes],
    benchmarks: pd.DataFrame,
) -> str:
    """The report page: headline, what was run, plots, then every table with its reading."""
    lines = readings(tables)
    images = "".join(
        f'<figure><img alt="{name}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{html.escape(FIGURE_TITLES[name])}</figcaption></figure>"
        for name, png in figures.items()
    )
    sections = "".join(
        f'<h3 id="section-{name}">{html.escape(TITLES[name])}</h3>'
        f'<p class="reading">{html.escape(lines.get(name, ""))}</p>'
        + _table_html(name, tables[name])
        for name in ORDER
        if name in tables
    )
    resources = _table_html("benchmarks", benchmarks)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gradual-learning report: {html.escape(facts["run"])}</title>
<style>{STYLE}</style></head><body>
<h1>gradual-learning: {html.escape(facts["run"])}</h1>
<p class="headline">{html.escape(headline(tables))}</p>
<h2>What was run</h2>{_definition_list(facts)}
<h2>Plots</h2>{images}
<h2>Tables</h2>{sections}
<h2>Time and memory per rule</h2>{resources}
</body></html>
"""
