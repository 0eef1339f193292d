"""The run's tables (gradual.tables) and its entity graph, from every state's outputs."""

from pathlib import Path

import pandas as pd

from gradual.graph import graph_tables
from gradual.io import write_markdown, write_parquet
from gradual.logs import job_log
from gradual.tables import TableInputs, make_tables

with job_log(snakemake.log[0]):
    inputs, shape = snakemake.input, snakemake.params.shape
    states = shape.input_states()

    def per_state(kind: str) -> dict[str, pd.DataFrame]:
        return dict(zip(states[kind], map(pd.read_parquet, inputs[kind]), strict=True))

    questions = pd.read_parquet(inputs.questions)
    categories = per_state("categories")
    trained_on = {state: set(examples["question_id"]) for state, examples in per_state("training").items()}
    greedy = {
        state: pd.concat([pd.read_parquet(path) for path in inputs[f"greedy_{state}"]], ignore_index=True)
        for state in states["greedy"]
    }
    run = TableInputs(
        shape,
        questions=questions,
        categories=categories,
        retests=per_state("retest"),
        evaluations=per_state("evaluation"),
        metrics=per_state("metrics"),
        dev_scores=per_state("dev_scores"),
        trained_on=trained_on,
        greedy=greedy,
        match_mode=snakemake.params.match_mode,
        test_categories=pd.read_parquet(inputs.test_categories) if "test_categories" in inputs.keys() else None,
    )
    tables = make_tables(run)
    for path in snakemake.output.tables:
        name, ext = Path(path).name.rsplit(".", 1)
        if ext == "parquet":
            print(f"## {name}\n{tables[name].to_string(index=False)}\n")
            write_parquet(tables[name], path)
        else:
            write_markdown(tables[name], path)
    edges, nodes = graph_tables(questions, categories)
    write_parquet(edges, snakemake.output.edges)
    write_parquet(nodes, snakemake.output.nodes)
