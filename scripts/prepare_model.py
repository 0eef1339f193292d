"""Make the configured model usable (converted or downloaded once into resources/) and record where it is."""

import logging

from gradual.logs import job_log
from gradual.models import prepare_model
from gradual.shared import write_manifest

with job_log(snakemake.log[0]):
    spec = snakemake.params.spec
    weights = prepare_model(spec, snakemake.params.folder)
    logging.info("model %s ready at %s", spec["source"], weights)
    write_manifest(snakemake.output[0], spec, weights)
