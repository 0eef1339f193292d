"""The run report (gradual.report): plots as PNG files and one self-contained HTML page."""

import json
from pathlib import Path

import pandas as pd

from gradual import report
from gradual.io import write_text
from gradual.logs import job_log
from gradual.tables import CATEGORY_COUNTS

with job_log(snakemake.log[0]):
    inputs = snakemake.input
    tables = {Path(path).name.removesuffix(".parquet"): pd.read_parquet(path) for path in inputs.tables}
    counts = dict(zip(snakemake.params.count_labels, map(pd.read_parquet, inputs.category_counts), strict=True))
    tables[CATEGORY_COUNTS] = counts["untuned"]
    names = [Path(path).stem for path in snakemake.output.figures]  # the run's plots: `report.figure_names`
    figures = {name: report.png_bytes(figure) for name, figure in report.make_figures(names, tables, counts).items()}
    for name, path in zip(names, snakemake.output.figures):
        Path(path).write_bytes(figures[name])
    benchmarks = report.benchmark_summary(zip(snakemake.params.benchmark_rules, inputs.benchmarks, strict=True))
    facts = report.run_facts(
        json.loads(Path(inputs.provenance).read_text()), json.loads(Path(inputs.summary).read_text())
    )
    write_text(report.render(facts, tables, figures, benchmarks), snakemake.output.page)
