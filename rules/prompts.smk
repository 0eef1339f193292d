# Few-shot prompts: n_prompts per question for detection, one fixed prompt per question for evaluation.


rule sample_prompts:
    input:
        questions=PATHS.questions(),
        train=PATHS.questions("train"),
    output:
        PATHS.prompts(),
    params:
        prompt_set=lambda wildcards: PROMPT_SETS[wildcards.prompt_set],
        k_shot=config["detection"]["k_shot"],
        prompt_format=config["prompt"],
    log:
        PATHS.log("sample_prompts", "prompt_set", "split"),
    benchmark:
        PATHS.benchmark("sample_prompts", "prompt_set", "split")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/sample_prompts.py"
