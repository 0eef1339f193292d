"""Fetch the dataset zip (and its relation templates) into resources/ once, and record where it is."""

from gradual.download import download_dataset
from gradual.logs import job_log
from gradual.shared import write_manifest

with job_log(snakemake.log[0]):
    spec = snakemake.params.spec
    write_manifest(snakemake.output[0], spec, download_dataset(spec, snakemake.params.folder))
