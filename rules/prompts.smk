# Few-shot prompts: n_prompts per question for detection (the untuned model's, and under fresh
# re-detection each fine-tuned state's own), one fixed prompt per question for evaluation.


rule sample_prompts:
    input:
        questions=PATHS.questions(),
        train=PATHS.questions("train"),
    output:
        PATHS.prompts(),
    log:
        PATHS.log("sample_prompts", "prompt_set", "split"),
    benchmark:
        PATHS.benchmark("sample_prompts", "prompt_set", "split")
    wildcard_constraints:
        prompt_set=PROMPT_SET_PATTERN,
    conda:
        "../envs/gradual.yaml"
    params:
        prompt_set=prompt_set_draw,
        k_shot=config["detection"]["k_shot"],
        prompt_format=config["prompt"],
    script:
        "../scripts/sample_prompts.py"
