# The paper's tables and the entity graph from the categories, evaluations and training metrics of
# every state, and the run's provenance.


rule tables:
    input:
        unpack(table_inputs),
    output:
        tables=table_outputs(),
        edges=PATHS.graph("edges"),
        nodes=PATHS.graph("nodes"),
    log:
        PATHS.log("tables"),
    benchmark:
        PATHS.benchmark("tables")
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        shape=SHAPE,
        match_mode=MATCHING["mode"],
    script:
        "../scripts/make_tables.py"


rule provenance:
    input:
        generations=all_generations(),
        training=[PATHS.training_metrics(state) for state in [*TRAINED, *SWEEP]],
    output:
        PATHS.provenance(),
    log:
        PATHS.log("provenance"),
    benchmark:
        PATHS.benchmark("provenance")
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        config=config,  # the record of the whole resolved config: any edit rewrites it, and nothing else
        project=project_commit(workflow.basedir),
    script:
        "../scripts/provenance.py"
