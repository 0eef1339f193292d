"""The paper's tables (3, 4, 6-12) as Parquet and Markdown, from every state's outputs."""

import pandas as pd

from gradual import analysis
from gradual.categories import merge_unknown
from gradual.io import write_parquet, write_text
from gradual.logs import job_log
from gradual.stages import BASE

with job_log(snakemake.log[0]):
    params, inputs = snakemake.params, snakemake.input
    trained, sweep = params.states["trained"], params.states["sweep"]
    categories = dict(zip([BASE, *trained], map(pd.read_parquet, inputs.categories)))
    evaluations = dict(zip([BASE, *trained, *sweep], map(pd.read_parquet, inputs.evaluation)))
    metrics = dict(zip([*trained, *sweep], map(pd.read_parquet, inputs.metrics)))
    retest = pd.read_parquet(inputs.retest)

    def comparable(table: pd.DataFrame) -> pd.DataFrame:
        """Without re-detection sampling, fine-tuned states have WeaklyOrUnknown: merge the base's to match."""
        return table if params.redetect_sampling else table.assign(category=merge_unknown(table["category"]))

    def main(stage: int) -> str:
        """The state of a stage on the main strategy (5, the paper's method, when it runs)."""
        return "stage1" if stage == 1 else f"stage{stage}-s{params.main_strategy}"

    main_models = {"untuned": evaluations[BASE], "one-stage": evaluations["stage1"]}
    main_models |= {"two-stage": evaluations[main(2)]} if params.rounds > 1 else {}
    base_comparable = comparable(categories[BASE])
    stage1_transitions = analysis.transition_matrix(base_comparable, categories["stage1"])
    tables = {
        "table3-transitions-stage1": stage1_transitions,
        "table4-transitions-retest": analysis.transition_matrix(categories[BASE], retest),
        "table3-minus-table4": analysis.transition_difference(
            stage1_transitions, analysis.transition_matrix(base_comparable, comparable(retest))
        ),
        "table7-accuracy": analysis.accuracy_table(main_models),
        "table10-category-counts": analysis.category_counts_by_stage(
            {"untuned": categories[BASE]} | {f"stage {n}": categories[main(n)] for n in range(1, params.rounds + 1)}
        ),
        "table11-rounds": analysis.accuracy_table(
            {"untuned": evaluations[BASE]} | {f"round {n}": evaluations[main(n)] for n in range(1, params.rounds + 1)}
        ),
        "training-metrics": pd.concat([table.assign(state=state) for state, table in metrics.items()], ignore_index=True),
    }
    if params.rounds > 1:
        tables["table8-strategies"] = analysis.accuracy_table(
            {f"strategy {k}": evaluations[f"stage2-s{k}"] for k in params.strategies}
        )
        tables["table12-transitions-stage2"] = pd.concat(
            [
                analysis.transition_matrix(categories["stage1"], categories[f"stage2-s{k}"]).assign(strategy=k)
                for k in params.strategies
            ],
            ignore_index=True,
        )
    if "test_categories" in inputs.keys():
        tables["table9-accuracy-by-category"] = analysis.accuracy_by_category(
            main_models, pd.read_parquet(inputs.test_categories)
        )
    if sweep:
        tables["table6-epoch-sweep"] = analysis.epoch_sweep_table(
            {int(state.removeprefix("sweep-e")): metrics[state] for state in sweep}
        )
    for name in params.tables:
        print(f"## {name}\n{tables[name].to_string(index=False)}\n")
        write_parquet(tables[name], params.paths.table(name, "parquet"))
        write_text(tables[name].to_markdown(index=False) + "\n", params.paths.table(name, "md"))
