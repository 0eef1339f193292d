# Dataset and model: from a source the user names to files every later rule reads. Downloads and
# converted models live in shared folders under resources/ (see gradual.shared); the rules' own
# outputs are small manifests that say which folder this run uses.


rule download_dataset:
    output:
        PATHS.dataset_manifest(),
    log:
        PATHS.log("download_dataset", "name"),
    benchmark:
        PATHS.benchmark("download_dataset", "name")
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        spec=DOWNLOAD_SPEC,
        folder=lambda wildcards: PATHS.shared_dataset(wildcards.name),
    script:
        "../scripts/download_dataset.py"


rule prepare_dataset:
    input:
        unpack(dataset_inputs),
    output:
        **{split: PATHS.questions(split) for split in SPLITS},
        summary=PATHS.dataset_summary(),
    log:
        PATHS.log("prepare_dataset"),
    benchmark:
        PATHS.benchmark("prepare_dataset")
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        dataset=pick(DATASET, "source", "relations", "per_relation", "single_answer_train", "dedupe", "seed"),
        min_train_per_relation=DETECTION["k_shot"] + 1,
    script:
        "../scripts/prepare_dataset.py"


rule prepare_model:
    output:
        PATHS.model_manifest(),
    log:
        PATHS.log("prepare_model", "model"),
    benchmark:
        PATHS.benchmark("prepare_model", "model")
    localrule: True
    conda:
        "../envs/gradual.yaml"
    params:
        spec=MODEL_SPEC,
        folder=lambda wildcards: PATHS.shared_model(wildcards.model),
    script:
        "../scripts/prepare_model.py"
