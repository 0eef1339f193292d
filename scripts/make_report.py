"""The run report (gradual.report): plots as PNG files and one self-contained HTML page."""

import json
from pathlib import Path

import pandas as pd

from gradual.io import write_text
from gradual.logs import job_log
from gradual import report

with job_log(snakemake.log[0]):
    inputs, shape = snakemake.input, snakemake.params.shape
    tables = {Path(path).name.removesuffix(".parquet"): pd.read_parquet(path) for path in inputs.tables}
    counts = dict(zip(snakemake.params.count_labels, map(pd.read_parquet, inputs.category_counts), strict=True))
    tables["table2-categories"] = counts["untuned"]
    figures = {name: report.png_bytes(figure) for name, figure in report.make_figures(shape, tables, counts).items()}
    for path in snakemake.output.figures:
        Path(path).write_bytes(figures[Path(path).stem])
    logs = Path(snakemake.params.logs)
    benchmarks = report.benchmark_summary(inputs.benchmarks, logs)
    facts = report.run_facts(
        json.loads(Path(inputs.provenance).read_text()), json.loads(Path(inputs.summary).read_text())
    )
    write_text(report.render(facts, tables, figures, benchmarks), snakemake.output.page)
