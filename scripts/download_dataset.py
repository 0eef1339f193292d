"""Fetch the dataset zip (and its relation templates) into resources/ and unpack it."""

import logging
from pathlib import Path

from gradual.download import extract_zip, fetch
from gradual.logs import job_log

with job_log(snakemake.log[0]):
    download = snakemake.params.download
    target = Path(snakemake.output[0])
    archive = target.with_name(target.name + ".zip")
    digest = fetch(download["url"], archive, download["sha256"])
    logging.info("%s: sha256 %s (set dataset.download.sha256 to pin it)", download["url"], digest)
    extract_zip(archive, target)
    if download["templates_url"]:
        fetch(download["templates_url"], target / "relation_query_templates.json")
