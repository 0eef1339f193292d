"""The training pairs of one stage (and, for strategies with replay, the replay pool)."""

import logging

import pandas as pd

from gradual import method
from gradual.io import write_parquet
from gradual.logs import job_log
from gradual.stages import parse_stage

with job_log(snakemake.log[0]):
    stage = parse_stage(snakemake.wildcards.state)
    questions = pd.read_parquet(snakemake.input.questions)
    origin = pd.read_parquet(snakemake.input.origin)
    if stage.number == 1:
        pairs = method.stage1_pairs(questions, origin)
        pool = pairs.iloc[:0]
    else:
        current = pd.read_parquet(snakemake.input.current)
        pairs = method.stage2_pairs(questions, origin, current, stage.strategy)
        replays = method.get_strategy(stage.strategy).replay
        pool = method.replay_pool(questions, current, origin) if replays else pairs.iloc[:0]
    logging.info("%s: %d training pairs, replay pool of %d", stage.state, len(pairs), len(pool))
    write_parquet(pairs, snakemake.output.pairs)
    write_parquet(pool, snakemake.output.replay_pool)
