"""The training data of one stage: its pairs, its replay pool, and every epoch's examples."""

import logging

import pandas as pd

from gradual import method
from gradual.io import write_parquet
from gradual.logs import job_log
from gradual.stages import parse_stage

with job_log(snakemake.log[0]):
    stage = parse_stage(snakemake.wildcards.state)
    settings = snakemake.params.training
    questions = pd.read_parquet(snakemake.input.questions)
    origin = pd.read_parquet(snakemake.input.origin)
    if stage.number == 1:
        pairs = method.stage1_pairs(questions, origin)
        pool = pairs.iloc[:0]
    else:
        current = pd.read_parquet(snakemake.input.current)
        if stage.control is not None:
            pairs = method.control_pool(stage.control, questions, origin, current)
            pool = pairs.iloc[:0]
            size = method.matched_epoch_size(questions, origin, current, settings["matched_replay_ratio"])
        else:
            pairs = method.stage2_pairs(questions, origin, current, stage.strategy)
            replays = method.get_strategy(stage.strategy).replay
            pool = method.replay_pool(questions, current, origin) if replays else pairs.iloc[:0]
    if stage.control is not None:
        examples = method.control_examples(pairs, size, settings["epochs"], settings["seed"])
        logging.info("%s: %d examples per epoch (strategy 5's) drawn from %d pairs", stage.state, size, len(pairs))
    else:
        examples = method.stage_examples(pairs, pool, settings["replay_ratio"], settings["epochs"], settings["seed"])
        logging.info("%s: %d training pairs, replay pool of %d", stage.state, len(pairs), len(pool))
    write_parquet(pairs, snakemake.output.pairs)
    write_parquet(pool, snakemake.output.replay_pool)
    write_parquet(examples, snakemake.output.examples)
