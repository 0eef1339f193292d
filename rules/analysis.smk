# The paper's tables from the categories, evaluations and training metrics of every state.


rule tables:
    input:
        unpack(table_inputs),
    output:
        [PATHS.table(name, ext) for name in TABLES for ext in ("parquet", "md")],
    params:
        states={"trained": TRAINED, "sweep": SWEEP},
        main_strategy=MAIN_STRATEGY,
        strategies=METHOD["strategies"],
        rounds=METHOD["rounds"],
        redetect_sampling=METHOD["redetect_sampling"],
        tables=TABLES,
        paths=PATHS,
    log:
        PATHS.log("tables"),
    benchmark:
        PATHS.benchmark("tables")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/make_tables.py"
