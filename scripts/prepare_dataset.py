"""Read the configured QA source, filter it and write one question table per split."""

import logging

from gradual import dataset
from gradual.io import write_parquet
from gradual.logs import job_log

with job_log(snakemake.log[0]):
    config = snakemake.params.dataset
    inputs = snakemake.input
    if config["source"] == "files":
        frame = dataset.read_tables({split: inputs[split] for split in dataset.SPLITS})
        templates = dataset.read_templates(inputs.templates) if config["templates"] else {}
    else:
        root = inputs.downloaded if config["source"] == "download" else inputs.directory
        frame, templates = dataset.read_entityquestions(root)
    splits = dataset.prepare(
        frame,
        templates,
        relations=config["relations"],
        per_relation=config["per_relation"],
        single_answer_train=config["single_answer_train"],
        dedupe=config["dedupe"],
        seed=config["seed"],
        min_train_per_relation=snakemake.params.min_train_per_relation,
    )
    for split, questions in splits.items():
        logging.info("%s: %d questions, %d relations", split, len(questions), questions["relation"].nunique())
        write_parquet(questions, snakemake.output[split])
