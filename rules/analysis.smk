# The paper's tables from the categories, evaluations and training metrics of every state, and
# the run's provenance.


rule tables:
    localrule: True
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


rule provenance:
    localrule: True
    input:
        generations=all_generations(),
    output:
        PATHS.provenance(),
    params:
        config=config,  # the record of the whole resolved config: any edit rewrites it, and nothing else
        project=project_commit(workflow.basedir),
    log:
        PATHS.log("provenance"),
    benchmark:
        PATHS.benchmark("provenance")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/provenance.py"
