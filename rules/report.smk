# The run report: one HTML page with what was run, every table and the plots (gradual.report).
# Its plots, the page and the tables' Markdown are also marked for `snakemake --report`.


report: "../report/workflow.rst"


JOB_BENCHMARKS = job_benchmarks()  # the page sums them per rule


rule report:
    input:
        tables=[PATHS.table(name, "parquet") for name in TABLE_NAMES],
        category_counts=[PATHS.category_counts(state, "detect", "train") for state in REPORT_STATES.values()],
        provenance=PATHS.provenance(),
        summary=PATHS.dataset_summary(),
        benchmarks=list(JOB_BENCHMARKS),
    output:
        page=report(PATHS.report_page(), caption="../report/page.rst", category="Run report"),
        figures=[
            report(PATHS.report_figure(name), caption="../report/figure.rst", category="Plots")
            for name in figure_names(SHAPE)
        ],
    log:
        PATHS.log("report"),
    benchmark:
        PATHS.benchmark("report")
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        count_labels=list(REPORT_STATES),
        benchmark_rules=list(JOB_BENCHMARKS.values()),
    script:
        "../scripts/make_report.py"
