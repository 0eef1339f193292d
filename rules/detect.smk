# Knowledge detection: generate answers (sharded), then count them into categories.


rule generate:
    input:
        prompts=PATHS.prompts(),
        questions=PATHS.questions(),
        model=MODEL_DIR,
    output:
        PATHS.generations(),
    params:
        shards=config["generation"]["shards"],
        generation=config["generation"],
        match_mode=config["matching"]["mode"],
    threads: workflow.cores
    log:
        PATHS.log("generate", "state", "prompt_set", "split", "shard"),
    benchmark:
        PATHS.benchmark("generate", "state", "prompt_set", "split", "shard")
    conda:
        GENERATION_ENV
    script:
        "../scripts/generate.py"


rule assign_categories:
    input:
        shards=generation_shards,
        questions=PATHS.questions(),
    output:
        categories=PATHS.categories(),
        counts=PATHS.category_counts(ext="parquet"),
        counts_md=PATHS.category_counts(ext="md"),
    log:
        PATHS.log("assign_categories", "state", "split"),
    benchmark:
        PATHS.benchmark("assign_categories", "state", "split")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/assign_categories.py"
