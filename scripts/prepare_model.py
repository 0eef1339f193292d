"""Turn the configured model spec into a local transformers directory."""

import logging

from gradual.logs import job_log
from gradual.models import prepare_model

with job_log(snakemake.log[0]):
    model = snakemake.params.model
    weights = prepare_model(model["source"], snakemake.output[0], model["file"], model["revision"], model["dtype"])
    logging.info("model %s ready at %s", model["source"], weights)
