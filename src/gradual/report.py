"""The run report: one HTML page that opens from disk (images embedded) and shows what was run,
the paper's tables for this run with a one-line reading each, and plots.

Every number on the page comes from a results file: the tables as written by the tables step,
the category counts per relation, provenance.json, the dataset summary and the benchmark files.
"""

import base64
import html
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import CenteredNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from gradual.analysis import SIGNIFICANCE
from gradual.categories import ALL_CATEGORIES
from gradual.readings import Tables
from gradual.tables import TABLE, TABLES, RunShape, every_run

COLOURS = dict(zip(ALL_CATEGORIES, ["#1b7837", "#7fbf7b", "#f1a340", "#b35806", "#998ec3"]))
NUMBER_FORMAT = "{:.4g}".format


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


def _accuracy_figure(tables: Tables, counts: Tables) -> Figure:
    """Tables 7, 8 and 11 with their 95% intervals."""
    accuracy_tables = [name for name in ("table7-accuracy", "table8-strategies", "table11-rounds") if name in tables]
    fig = Figure(figsize=(4.2 * len(accuracy_tables), 3.8), layout="constrained")
    for ax, name in zip(fig.subplots(1, len(accuracy_tables), squeeze=False)[0], accuracy_tables):
        _accuracy_plot(ax, tables[name], TABLE[name].title.split(":")[0])
    return fig


def _transitions_figure(tables: Tables, counts: Tables) -> Figure:
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
    return fig


def _by_relation_figure(tables: Tables, counts: Tables) -> Figure:
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
    return fig


def _categories_figure(tables: Tables, counts: Tables) -> Figure:
    fig = Figure(figsize=(4.5 * len(counts), 3.8), layout="constrained")
    axes = fig.subplots(1, len(counts), squeeze=False, sharey=True)[0]
    for ax, (label, table) in zip(axes, counts.items()):
        _stacked_categories(ax, table, label)
    axes[0].set_ylabel("train questions")
    present = [c for c in ALL_CATEGORIES if any(c in table.columns for table in counts.values())]
    fig.legend([Patch(color=COLOURS[c]) for c in present], present, loc="outside right upper", fontsize=8)
    return fig


def _per_epoch_figure(tables: Tables, counts: Tables) -> Figure:
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
    return fig


def _graph_figure(tables: Tables, counts: Tables) -> Figure:
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
    return fig


def _by_category_figure(tables: Tables, counts: Tables) -> Figure:
    table = tables["table9-accuracy-by-category"]
    models = [c for c in table.columns if c not in ("category", "n")]
    fig = Figure(figsize=(7, 3.8), layout="constrained")
    ax = fig.subplots()
    _grouped_bars(ax, table, "category", models)
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    return fig


@dataclass(frozen=True)
class Plot:
    """One plot of the report: its PNG's name, its caption, which runs have it, and how it is drawn
    from the run's tables and the category counts per relation of the untuned model and each round."""

    name: str
    title: str
    made: Callable[[RunShape], bool]
    draw: Callable[[Tables, Tables], Figure]


# The registry of plots, in the page's order: a plot added here is a PNG output of the report rule
# and a figure on the page.
PLOTS = (
    Plot("accuracy", "Test accuracy with 95% intervals: main models (Table 7), strategies (Table 8), rounds "
         "(Table 11)", every_run, _accuracy_figure),
    Plot("transitions", "Category transitions of the train questions: stage 1, retest, their difference, stage 2",
         every_run, _transitions_figure),
    Plot("transitions-by-relation", "Stage 1's key transitions per relation beyond the retest (fresh prompts), "
         "or as counted (same prompts)", every_run, _by_relation_figure),
    Plot("categories-per-relation", "Train categories per relation: untuned model and after each round",
         every_run, _categories_figure),
    Plot("accuracy-per-epoch", "Dev accuracy after each epoch of every trained state (test too where scored per "
         "epoch)", every_run, _per_epoch_figure),
    Plot("entity-graph", "Entity graph with a control: share of pairs linked to Initial entities, reclassified vs "
         "stayed, per origin (95% intervals)", every_run, _graph_figure),
    Plot("accuracy-by-category", "Table 9: test accuracy per category of the untuned model",
         lambda shape: shape.detects_test, _by_category_figure),
)  # fmt: skip
PLOT = {plot.name: plot for plot in PLOTS}


def figure_names(shape: RunShape) -> list[str]:
    """The plots a run of this shape has (each also a PNG output of the report rule)."""
    return [plot.name for plot in PLOTS if plot.made(shape)]


def make_figures(names: list[str], tables: Tables, counts: Tables) -> dict[str, Figure]:
    """The plots `names` (`figure_names` of the run) as matplotlib Figures, from the run's tables and
    the category counts per relation of the untuned model and each round (`counts`, label -> Table 2)."""
    return {name: PLOT[name].draw(tables, counts) for name in names}


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def benchmark_summary(benchmarks: Iterable[tuple[str, str | Path]]) -> pd.DataFrame:
    """Per rule, from (rule, benchmark file) pairs: jobs, total and longest wall seconds, peak memory."""
    rows = []
    for rule, path in benchmarks:
        table = pd.read_csv(path, sep="\t")
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
        if row["mcnemar_p"] < SIGNIFICANCE and row["difference"] > 0
        else ("does worse than" if row["mcnemar_p"] < SIGNIFICANCE else "does not differ beyond noise from")
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


def readings(tables: Tables) -> dict[str, str]:
    """One line per table saying what it shows for this run (`gradual.readings`)."""
    return {table.name: table.reading(tables[table.name], tables) for table in TABLES if table.name in tables}


def render(
    facts: dict[str, str],
    tables: Tables,
    figures: dict[str, bytes],
    benchmarks: pd.DataFrame,
) -> str:
    """The report page: headline, what was run, plots, then every table with its reading, each in
    the order of its registry (`PLOTS`, `gradual.tables.TABLES`)."""
    lines = readings(tables)
    images = "".join(
        f'<figure><img alt="{plot.name}" src="data:image/png;base64,{base64.b64encode(figures[plot.name]).decode()}">'
        f"<figcaption>{html.escape(plot.title)}</figcaption></figure>"
        for plot in PLOTS
        if plot.name in figures
    )
    sections = "".join(
        f'<h3 id="section-{table.name}">{html.escape(table.title)}</h3>'
        f'<p class="reading">{html.escape(lines[table.name])}</p>' + _table_html(table.name, tables[table.name])
        for table in TABLES
        if table.name in tables
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
