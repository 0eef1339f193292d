# Fine-tuning: the data of each stage (every epoch's examples), then LoRA training with per-epoch
# evaluation and resume.


rule training_pairs:
    input:
        unpack(training_pairs_inputs),
    output:
        pairs=PATHS.training_pairs(),
        replay_pool=PATHS.replay_pool(),
        examples=PATHS.trained_examples(),
    log:
        PATHS.log("training_pairs", "state"),
    benchmark:
        PATHS.benchmark("training_pairs", "state")
    wildcard_constraints:
        state=TRAINED_STATE_PATTERN,
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        training=training_data_settings,
    script:
        "../scripts/training_pairs.py"


rule finetune:
    input:
        unpack(finetune_inputs),
    output:
        adapter=directory(PATHS.adapter()),
        metrics=PATHS.training_metrics(),
        dev_scores=PATHS.dev_scores(),
    log:
        PATHS.log("finetune", "state"),
    benchmark:
        PATHS.benchmark("finetune", "state")
    wildcard_constraints:
        state=TRAINED_STATE_PATTERN,
    conda:
        "../envs/gpu.yaml"
    threads: 4
    resources:
        **gpu_job(TRAINING["gpus"]),
    params:
        checkpoints=PATHS.checkpoints(),
        training=training_settings,
        prompt_format=pick(config["prompt"], "template"),
        evaluation=pick(GENERATION, "max_new_tokens", "batch_size"),
        epoch_scoring=epoch_scoring,
        scoring=scoring("test"),  # dev and test: the held-out questions
    script:
        "../scripts/finetune.py"
