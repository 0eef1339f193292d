"""Read the configured QA source, filter it and write one question table per split and a summary."""

import json
import logging

from gradual import dataset
from gradual.io import write_parquet, write_text
from gradual.logs import job_log
from gradual.shared import folder_of

with job_log(snakemake.log[0]):
    config = snakemake.params.dataset
    inputs = snakemake.input
    if config["source"] == "files":
        frame = dataset.read_tables({split: inputs[split] for split in dataset.SPLITS})
        templates = dataset.read_templates(inputs.templates) if "templates" in inputs.keys() else {}
    else:
        root = folder_of(inputs.downloaded) if config["source"] == "download" else inputs.directory
        frame, templates = dataset.read_entityquestions(root)
    filters = {key: value for key, value in config.items() if key != "source"}  # named as prepare() names them
    filters["min_train_per_relation"] = snakemake.params.min_train_per_relation
    prepared = dataset.prepare(frame, templates, **filters)
    for split, questions in prepared.splits.items():
        logging.info(
            "%s: %d questions, %d relations; %s",
            split,
            len(questions),
            questions["relation"].nunique(),
            prepared.summary["splits"][split],
        )
        write_parquet(questions, snakemake.output[split])
    write_text(json.dumps(prepared.summary, indent=2) + "\n", snakemake.output.summary)
