"""Generate the answers of one shard of prompts: greedy for all, samples where they are needed."""

import logging

import pandas as pd
import torch
from transformers import AutoTokenizer

from gradual.detection import detect, shard_questions
from gradual.generation import GenerationSettings, check_prompt_lengths, context_length, load_backend
from gradual.io import write_parquet
from gradual.logs import job_log
from gradual.shared import folder_of

with job_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    config = snakemake.params.generation
    settings = GenerationSettings.from_config(config)
    prompts = pd.read_parquet(snakemake.input.prompts, columns=["question_id", "prompt_index", "prompt"])
    shard = shard_questions(prompts["question_id"], int(snakemake.wildcards.shard), config["shards"])
    prompts = prompts[prompts["question_id"].isin(shard)].reset_index(drop=True)
    logging.info("shard %s: %d questions, %d prompts", snakemake.wildcards.shard, len(shard), len(prompts))
    model = folder_of(snakemake.input.model)
    engine_options = config.get("vllm", {})
    limit = context_length(model, engine_options)
    check_prompt_lengths(prompts, AutoTokenizer.from_pretrained(model), limit, settings.max_new_tokens)
    backend = load_backend(config["backend"], model, settings, snakemake.input.get("adapter"), engine_options)
    golds = None
    if config["sampling"] == "never_right":
        questions = pd.read_parquet(snakemake.input.questions, columns=["question_id", "answers"])
        golds = dict(zip(questions["question_id"], questions["answers"].map(list)))
    generations = detect(backend, prompts, settings.seed, config["sampling"], golds, config.get("match_mode"))
    logging.info("%d generations, %d sampled", len(generations), int((generations["mode"] == "sample").sum()))
    write_parquet(generations, snakemake.output[0])
