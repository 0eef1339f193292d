"""Generate the answers of one shard of prompts: greedy for all, samples where they are needed."""

import logging

import pandas as pd
import torch

from gradual.detection import detect, shard_questions
from gradual.generation import GenerationSettings, load_backend
from gradual.io import write_parquet
from gradual.logs import job_log
from gradual.models import model_path

with job_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    config = snakemake.params.generation
    settings = GenerationSettings.from_config(config)
    prompts = pd.read_parquet(snakemake.input.prompts, columns=["question_id", "prompt_index", "prompt"])
    questions = pd.read_parquet(snakemake.input.questions, columns=["question_id", "answers"])
    shard = shard_questions(prompts["question_id"], int(snakemake.wildcards.shard), snakemake.params.shards)
    prompts = prompts[prompts["question_id"].isin(shard)].reset_index(drop=True)
    logging.info("shard %s: %d questions, %d prompts", snakemake.wildcards.shard, len(shard), len(prompts))
    adapter = snakemake.input.get("adapter")
    backend = load_backend(config["backend"], model_path(snakemake.input.model), settings, adapter, config["vllm"])
    golds = dict(zip(questions["question_id"], questions["answers"].map(list)))
    generations = detect(backend, prompts, golds, settings.seed, snakemake.params.match_mode, snakemake.params.sampling)
    logging.info("%d generations, %d sampled", len(generations), int((generations["mode"] == "sample").sum()))
    write_parquet(generations, snakemake.output[0])
