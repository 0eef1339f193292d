# Knowledge detection for every model state: generate answers (sharded), then score them with the
# matcher and count them into categories; the fixed evaluation prompts give each state's accuracy.


rule generate:
    input:
        unpack(generation_inputs),
    output:
        PATHS.generations(),
    log:
        PATHS.log("generate", "state", "prompt_set", "split", "shard"),
    benchmark:
        PATHS.benchmark("generate", "state", "prompt_set", "split", "shard")
    conda:
        "../envs/gpu.yaml"
    threads: 4
    resources:
        **gpu_job(GENERATION["gpus"]),
    params:
        generation=generation_settings,
    script:
        "../scripts/generate.py"


rule assign_categories:
    input:
        shards=lambda wildcards: generation_shards(wildcards.state, wildcards.prompt_set, wildcards.split),
        questions=PATHS.questions(),
    output:
        categories=PATHS.categories(),
        counts=PATHS.category_counts(ext="parquet"),
        counts_md=PATHS.category_counts(ext="md"),
    log:
        PATHS.log("assign_categories", "state", "prompt_set", "split"),
    benchmark:
        PATHS.benchmark("assign_categories", "state", "prompt_set", "split")
    wildcard_constraints:
        prompt_set="detect|retest",
    conda:
        "../envs/gradual.yaml"
    params:
        sampled=lambda wildcards: sampling(wildcards) != "off",
        scoring=lambda wildcards: scoring(wildcards.split),
    script:
        "../scripts/assign_categories.py"


rule score_evaluation:
    input:
        shards=lambda wildcards: generation_shards(wildcards.state, "eval", wildcards.split),
        questions=PATHS.questions(),
    output:
        PATHS.evaluation(),
    log:
        PATHS.log("score_evaluation", "state", "split"),
    benchmark:
        PATHS.benchmark("score_evaluation", "state", "split")
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        scoring=lambda wildcards: scoring(wildcards.split),
    script:
        "../scripts/score_evaluation.py"
