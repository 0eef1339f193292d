# The run report: one HTML page with what was run, every table and the plots (gradual.report).
# Its plots, the page and the tables' Markdown are also marked for `snakemake --report`.


report: "../report/workflow.rst"


rule report:
    localrule: True
    input:
        tables=[PATHS.table(name, "parquet") for name in TABLES],
        category_counts=[PATHS.category_counts(state, "detect", "train") for state in REPORT_STATES.values()],
        provenance=PATHS.provenance(),
        summary=PATHS.dataset_summary(),
        benchmarks=job_benchmarks(),
    output:
        page=report(PATHS.report_page(), caption="../report/page.rst", category="Run report"),
        figures=[
            report(PATHS.report_figure(name), caption="../report/figure.rst", category="Plots")
            for name in figure_names(SHAPE)
        ],
    params:
        shape=SHAPE,
        count_labels=list(REPORT_STATES),
        logs=PATHS.logs(),  # the benchmarks' folder, whose first level names the rule
    log:
        PATHS.log("report"),
    benchmark:
        PATHS.benchmark("report")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/make_report.py"
