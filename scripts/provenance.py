"""The run's provenance: resolved config, project commit, versions, and how each generation and training job ran."""

import json

from gradual.io import read_parquet_metadata, write_text
from gradual.logs import job_log
from gradual.provenance import versions

with job_log(snakemake.log[0]):
    record = {
        "config": snakemake.params.config,
        "project": snakemake.params.project,
        "versions": versions(),
        "generation": {path: read_parquet_metadata(path) for path in snakemake.input.generations},
        "training": {path: read_parquet_metadata(path) for path in snakemake.input.training},
    }
    write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", snakemake.output[0])
