"""Draw the few-shot prompts of one split for one prompt set."""

import logging

import pandas as pd

from gradual.io import write_parquet
from gradual.logs import job_log
from gradual.prompts import PromptFormat, build_prompts

with job_log(snakemake.log[0]):
    prompt_set = snakemake.params.prompt_set
    prompts = build_prompts(
        pd.read_parquet(snakemake.input.questions),
        pd.read_parquet(snakemake.input.train),
        n_prompts=prompt_set["n_prompts"],
        k_shot=snakemake.params.k_shot,
        seed=prompt_set["seed"],
        prompt_format=PromptFormat(**snakemake.params.prompt_format),
        exemplar_pool=prompt_set["exemplar_pool"],
    )
    logging.info("%d prompts, e.g.\n%s", len(prompts), prompts["prompt"].iloc[0] if len(prompts) else "")
    write_parquet(prompts, snakemake.output[0])
