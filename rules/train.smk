# Fine-tuning: the data of each stage (every epoch's examples), then LoRA training with per-epoch
# evaluation and resume.


rule training_pairs:
    localrule: True
    input:
        unpack(training_pairs_inputs),
    output:
        pairs=PATHS.training_pairs(),
        replay_pool=PATHS.replay_pool(),
        examples=PATHS.trained_examples(),
    params:
        training=training_data_settings,
    wildcard_constraints:
        state=TRAINED_STATE_PATTERN,
    log:
        PATHS.log("training_pairs", "state"),
    benchmark:
        PATHS.benchmark("training_pairs", "state")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/training_pairs.py"


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        adapter=directory(PATHS.adapter()),
        metrics=PATHS.training_metrics(),
        dev_scores=PATHS.dev_scores(),
    params:
        checkpoints=PATHS.checkpoints(),
        training=training_settings,
        prompt_format=pick(config["prompt"], "template"),
        evaluation=pick(GENERATION, "max_new_tokens", "batch_size"),
        epoch_scoring=epoch_scoring,
        scoring=scoring("test"),  # dev and test: the held-out questions
    wildcard_constraints:
        state=TRAINED_STATE_PATTERN,
    threads: 4
    resources:
        **gpu_job(TRAINING["gpus"]),
    log:
        PATHS.log("finetune", "state"),
    benchmark:
        PATHS.benchmark("finetune", "state")
    conda:
        "../envs/gpu.yaml"
    script:
        "../scripts/finetune.py"
