"""Score each answer with the matcher and count each question's correct answers into its knowledge
category; write the counts table."""

import pandas as pd

from gradual.categories import assign_categories, category_counts
from gradual.detection import gold_answers, score
from gradual.io import write_parquet, write_text
from gradual.logs import job_log

with job_log(snakemake.log[0]):
    generations = pd.concat([pd.read_parquet(path) for path in snakemake.input.shards], ignore_index=True)
    questions = pd.read_parquet(snakemake.input.questions)
    scoring = snakemake.params.scoring
    generations["correct"] = score(generations, gold_answers(questions, scoring["answers"]), scoring["mode"])
    categories = assign_categories(questions, generations, snakemake.params.sampled)
    counts = category_counts(categories)
    print(counts.to_string(index=False))
    write_parquet(categories, snakemake.output.categories)
    write_parquet(counts, snakemake.output.counts)
    write_text(counts.to_markdown(index=False) + "\n", snakemake.output.counts_md)
