"""Per question of a split: whether the model state answered its fixed evaluation prompt correctly."""

import logging

import pandas as pd

from gradual.detection import gold_answers, score
from gradual.io import write_parquet
from gradual.logs import job_log

with job_log(snakemake.log[0]):
    generations = pd.concat([pd.read_parquet(path) for path in snakemake.input.shards], ignore_index=True)
    questions = pd.read_parquet(snakemake.input.questions, columns=["question_id", "relation", "answers"])
    scoring = snakemake.params.scoring
    generations["correct"] = score(generations, gold_answers(questions, scoring["answers"]), scoring["mode"])
    scored = questions[["question_id", "relation"]].merge(
        generations[["question_id", "answer", "correct"]], on="question_id", validate="1:1"
    )
    logging.info("accuracy %.4f on %d questions", scored["correct"].mean(), len(scored))
    write_parquet(scored, snakemake.output[0])
