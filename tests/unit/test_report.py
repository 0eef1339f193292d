import html
import re

import pandas as pd
import pytest
from test_tables import small_run_tables

from gradual.report import benchmark_summary, figure_names, headline, make_figures, png_bytes, readings, render
from gradual.tables import CATEGORY_COUNTS, TABLE, TABLES, RunShape, table_names

H, M, W, U, WU = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "WeaklyOrUnknown"
SHAPE = RunShape(rounds=2, strategies=(5,), detects_test=True)


@pytest.fixture(scope="module")
def tables():
    made = small_run_tables(SHAPE)
    counts = pd.DataFrame({"relation": ["P36", "Total"], H: [1, 1], M: [1, 1], W: [1, 1], U: [1, 1], "Total": [4, 4]})
    return made | {"table2-categories": counts}


def test_headline_says_whether_the_last_stage_beat_the_one_before(tables):
    line = headline(tables)
    # two-stage 0.75 vs one-stage 0.5: one question gained, none lost, McNemar p = 1
    assert line.startswith("Two-stage does not differ beyond noise from one-stage")
    assert "0.75 vs 0.5" in line and "p = 1 (1 questions gained, 0 lost)" in line


def test_readings_are_read_from_the_tables(tables):
    lines = readings(tables)
    assert lines["table2-categories"] == "1 HighlyKnown, 1 MaybeKnown, 1 WeaklyKnown, 1 Unknown of 4 train questions."
    assert lines["table3-transitions-stage1"] == (
        "1 of 1 WeaklyKnown pairs became MaybeKnown after stage 1. "  # the paper's central cell first
        "1 of 1 MaybeKnown pairs became HighlyKnown after stage 1."
    )
    # the retest kept q1 MaybeKnown and q2 WeaklyKnown never right
    assert lines["table3-minus-table4"] == (
        "WeaklyKnown -> MaybeKnown: +1 beyond retest noise (Table 3 minus Table 4). "
        "MaybeKnown -> HighlyKnown: +1 beyond retest noise (Table 3 minus Table 4)."
    )
    # a difference is read as one (its totals are zero): not "1 of 0 pairs became"
    assert lines["table12-minus-retest"] == "Strategy 5: MaybeKnown -> HighlyKnown: +1 beyond stage 1's retest."
    assert lines["retest-stage1"] == "0 of 1 MaybeKnown pairs became HighlyKnown on the retest."
    assert lines["table5-entity-graph"].startswith("0 of 2 Reclassified nodes are joined to the 2 Initial nodes (0%")
    assert "stage 1, origin WeaklyOrUnknown: 0 of 1 reclassified pairs linked" in lines["entity-graph-control"]
    assert lines["knowledge-gain"].startswith(
        "Two-stage gain in HighlyKnown pairs against one-stage's: the paper's way (every train pair, against the "
        "untuned model) +100%"
    )
    assert lines["table10-category-counts"] == "HighlyKnown train pairs per stage: untuned 1, stage 1 2, stage 2 3."


def test_every_figure_is_drawn_and_the_page_embeds_it(tables):
    figures = make_figures(figure_names(SHAPE), tables, {"untuned": tables["table2-categories"]})
    assert list(figures) == figure_names(SHAPE)
    pngs = {name: png_bytes(figure) for name, figure in figures.items()}
    assert all(png.startswith(b"\x89PNG") for png in pngs.values())
    facts = {"run": "unit"}
    page = render(facts, tables, pngs, pd.DataFrame({"rule": ["generate"], "jobs": [2]}))
    assert page.count("<img ") == len(figure_names(SHAPE)) and page.count('src="data:image/png;base64,') == len(pngs)
    assert all(f'id="{name}"' in page for name in tables)
    text = page.split("<h2>Tables</h2>")[1]  # the tables, without the images' base64
    assert "<NA>" not in text and ">nan<" not in text.lower()


def test_benchmark_summary_per_rule(tmp_path):
    logs = tmp_path / "logs" / "run"
    rows = {
        "generate/base/detect/train/0": (10.0, 900.0),
        "generate/base/detect/train/1": (30.0, 1000.0),
        "tables": (2.0, 200.0),
    }
    for name, (seconds, rss) in rows.items():
        path = logs / f"{name}.benchmark.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:10\t{rss}\n")
    summary = benchmark_summary((name.split("/")[0], logs / f"{name}.benchmark.tsv") for name in rows)
    assert summary.to_dict("list") == {
        "rule": ["generate", "tables"],
        "jobs": [2, 1],
        "total_s": [40.0, 2.0],
        "longest_s": [30.0, 2.0],
        "peak_rss_mb": [1000.0, 200.0],
    }


def test_a_run_on_the_same_prompts_subtracts_no_floor_and_says_why():
    shape = RunShape(rounds=2, strategies=(5,), redetect_prompts="same")
    made = small_run_tables(shape) | {"table2-categories": pd.DataFrame({"relation": ["Total"], H: [1], "Total": [1]})}
    assert "table3-minus-table4" not in made
    assert "nothing is subtracted" in readings(made)["table4-transitions-retest"]
    assert readings(made)["transitions-by-relation"].startswith("All relations, after stage 1 (same prompts: no floor)")
    assert set(made["knowledge-gain"]["baseline"]) == {"untuned"}  # no retest measured as the re-detections are
    assert "against the retest" not in readings(made)["knowledge-gain"]
    assert list(make_figures(figure_names(shape), made, {"untuned": made["table2-categories"]})) == figure_names(shape)


def test_over_several_seeds_the_headline_uses_their_t_interval():
    made = small_run_tables(RunShape(rounds=2, strategies=(5,), seeds=(0, 1)))
    line = headline(made)
    # two-stage against one-stage: +0.25 in seed 0 and 0 in seed 1
    assert line.startswith("Two-stage does not differ beyond noise from one-stage over 2 training seeds")
    assert "mean accuracy difference +0.125" in line and "seed 1: 0.75 (+0, McNemar p 1)" in line


@pytest.mark.parametrize(
    "shape",
    [
        RunShape(rounds=1, strategies=(5,)),
        RunShape(rounds=2, strategies=(1, 5), epoch_sweep=(2,), detects_test=True, controls=("continue",)),
        RunShape(rounds=2, strategies=(5,), seeds=(0, 1)),
        RunShape(rounds=2, strategies=(5,), redetect_prompts="same"),
    ],
)
def test_every_table_a_run_makes_is_on_its_page_in_the_registry_order(shape):
    made = small_run_tables(shape)
    assert list(made) == table_names(shape)
    tables = made | {CATEGORY_COUNTS: pd.DataFrame({"relation": ["Total"], H: [1], "Total": [1]})}
    drawn = make_figures(figure_names(shape), tables, {"untuned": tables[CATEGORY_COUNTS]})
    figures = {name: png_bytes(figure) for name, figure in drawn.items()}
    page = render({"run": "unit"}, tables, figures, pd.DataFrame({"rule": ["tables"]}))
    shown = re.findall(r'<h3 id="section-([\w-]+)">(.*?)</h3>', page)
    assert [name for name, _ in shown] == [table.name for table in TABLES if table.name in tables]
    assert {name for name, _ in shown} == set(table_names(shape)) | {CATEGORY_COUNTS}
    assert all(title == html.escape(TABLE[name].title) for name, title in shown)
    assert re.findall(r'<img alt="([\w-]+)"', page) == figure_names(shape)
