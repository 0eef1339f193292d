# Dataset and model: from a source the user names to files every later rule reads.


rule download_dataset:
    output:
        directory(PATHS.downloaded_dataset()),
    params:
        download=DATASET["download"],
    log:
        PATHS.log("download_dataset", "name"),
    benchmark:
        PATHS.benchmark("download_dataset", "name")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        unpack(dataset_inputs),
    output:
        **{split: PATHS.questions(split) for split in SPLITS},
    params:
        dataset=DATASET,
        min_train_per_relation=config["detection"]["k_shot"] + 1,
    log:
        PATHS.log("prepare_dataset"),
    benchmark:
        PATHS.benchmark("prepare_dataset")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/prepare_dataset.py"


rule prepare_model:
    output:
        directory(PATHS.model()),
    params:
        model=config["model"],
    log:
        PATHS.log("prepare_model", "model"),
    benchmark:
        PATHS.benchmark("prepare_model", "model")
    conda:
        "../envs/gradual.yaml"
    script:
        "../scripts/prepare_model.py"
