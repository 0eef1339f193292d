"""The run report of the finished configs/test.yaml run, as a reader sees it in a real browser
(headless Chromium): every plot renders, every table holds the numbers of its results file; and
`snakemake --report` builds the browsable report of the same run."""

import math
import zipfile

import pandas as pd
import pytest
from browser import chromium_available, render

from gradual.report import NUMBER_FORMAT, figure_names
from gradual.tables import RunShape, table_names

SHAPE = RunShape(rounds=2, strategies=(5,), epoch_sweep=(1,), detects_test=True, stage1_epochs=2)  # configs/test.yaml
UNAVAILABLE = chromium_available()


def shown(value) -> str:
    """A results-file value as the report prints it."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, float):
        return NUMBER_FORMAT(value)
    return str(value)


@pytest.fixture(scope="module")
def page(run):
    if UNAVAILABLE:
        pytest.skip(UNAVAILABLE)
    report = run.workdir / "results" / "test" / "report"
    return render(report / "index.html", report / "screenshots")


def test_every_plot_renders(page):
    assert [image["alt"] for image in page.images] == figure_names(SHAPE)
    assert page.broken_images == []
    for image in page.images:
        assert image["natural_width"] > 100 and image["natural_height"] > 100, image["alt"]
        assert image["width"] > 0 and image["height"] > 0, image["alt"]
    assert page.console_errors == []
    assert len(page.screenshots) == 2
    assert all(path.stat().st_size > 10_000 for path in page.screenshots)


def test_every_table_holds_its_results_file(run, page):
    tables = {table.caption: table.rows for table in page.tables}
    expected = {name: pd.read_parquet(run.paths.table(name)) for name in table_names(SHAPE)}
    expected["table2-categories"] = pd.read_parquet(run.paths.category_counts("base", "detect", "train"))
    assert set(expected) <= set(tables)
    for name, frame in expected.items():
        header, *rows = tables[name]
        assert header == [str(column) for column in frame.columns], name
        assert rows == [[shown(value) for value in row] for row in frame.astype(object).itertuples(index=False)], name


def test_the_page_says_what_was_run_and_whether_stage_2_beat_stage_1(run, page):
    text = (run.workdir / "results" / "test" / "report" / "index.html").read_text()
    assert page.title == "gradual-learning report: test"
    assert "two-stage vs one-stage" in text and "McNemar p" in text
    for fact in ("smollm2-135m-instruct", "P17, P36, P50", "train 24", "torch", "seeds"):
        assert fact in text, fact
    benchmarks = {table.caption: table.rows for table in page.tables}["benchmarks"]
    rules = {row[0] for row in benchmarks[1:]}
    assert {"generate", "finetune", "tables", "assign_categories"} <= rules


def test_snakemake_report_has_the_plots_and_tables(run):
    run.snakemake("--report", "snakemake-report.zip")
    names = zipfile.ZipFile(run.workdir / "snakemake-report.zip").namelist()
    for figure in figure_names(SHAPE):
        assert any(name.endswith(f"{figure}.png") for name in names), figure
    assert any(name.endswith("table7-accuracy.md") for name in names)
    assert any(name.endswith("index.html") for name in names)
