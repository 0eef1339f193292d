"""The tables of a run: which ones it makes (from its shape) and how each is computed from the
states' outputs. The one place that says so: the workflow takes the names from here, the script
only reads inputs and writes them, the report reads them back.

A table named after the paper (`table<N>-...`) computes what the paper's table does; what the
project adds (the controlled entity graph, the knowledge gain against the retest) has a name of its
own. docs/paper.md maps each to the paper."""

from dataclasses import dataclass

import pandas as pd

from gradual import analysis, graph
from gradual.categories import merge_unknown
from gradual.method import get_strategy
from gradual.stages import BASE, main_states, stage_state, sweep_state, trained_states


@dataclass(frozen=True)
class RunShape:
    """What a run contains, as far as its tables are concerned."""

    rounds: int
    strategies: tuple[int, ...]
    epoch_sweep: tuple[int, ...] = ()
    detects_test: bool = False  # the untuned model's categories of the test questions (Table 9)
    stage1_epochs: int | None = None  # a sweep count equal to it is stage 1 itself

    @classmethod
    def from_config(cls, config: dict) -> "RunShape":
        method = config["method"]
        return cls(
            rounds=method["rounds"],
            strategies=tuple(method["strategies"]),
            epoch_sweep=tuple(method["epoch_sweep"]),
            detects_test="test" in config["detection"]["splits"],
            stage1_epochs=config["training"]["stage1"]["epochs"],
        )

    @property
    def trained(self) -> list[str]:
        return trained_states(self.rounds, list(self.strategies))

    @property
    def sweep_states(self) -> dict[int, str]:
        """The state of each epoch count of the sweep: stage 1 where it trains that many epochs."""
        return {m: stage_state(1) if m == self.stage1_epochs else sweep_state(m) for m in sorted(self.epoch_sweep)}

    @property
    def sweep(self) -> list[str]:
        """The sweep's own trained states (not stage 1)."""
        return [state for state in self.sweep_states.values() if state != stage_state(1)]

    @property
    def main(self) -> list[str]:
        """The state of each round on the main strategy (round 1 is stage 1)."""
        return main_states(self.rounds, list(self.strategies))

    @property
    def stage2(self) -> dict[int, str]:
        return {k: stage_state(2, k) for k in self.strategies} if self.rounds > 1 else {}

    def input_states(self) -> dict[str, list[str]]:
        """The states whose outputs the tables read, per kind of output, in the order they are read."""
        return {
            "categories": [BASE, *self.trained],
            "evaluation": [BASE, *self.trained, *self.sweep],
            "metrics": [*self.trained, *self.sweep],
            "training": self.main,  # the examples each round trained on
        }


def table_names(shape: RunShape) -> list[str]:
    """The tables a run of this shape makes (paper table numbers first in their names)."""
    names = [
        "table3-transitions-stage1",
        "table4-transitions-retest",
        "table3-minus-table4",
        "table5-entity-graph",
        "entity-graph-control",
        "table7-accuracy",
        "table10-category-counts",
        "knowledge-gain",
        "table11-rounds",
        "training-metrics",
    ]
    names += ["table8-strategies", "table12-transitions-stage2"] if shape.rounds > 1 else []
    names += ["table9-accuracy-by-category"] if shape.detects_test else []
    names += ["table6-epoch-sweep"] if shape.epoch_sweep else []
    return names


def merged(table: pd.DataFrame) -> pd.DataFrame:
    """A category table with WeaklyKnown and Unknown as one WeaklyOrUnknown: the new side of the
    paper's transition tables (re-detection after fine-tuning draws no samples)."""
    return table.assign(category=merge_unknown(table["category"]))


def make_tables(
    shape: RunShape,
    questions: pd.DataFrame,
    categories: dict[str, pd.DataFrame],
    retest: pd.DataFrame,
    evaluations: dict[str, pd.DataFrame],
    metrics: dict[str, pd.DataFrame],
    trained_on: dict[str, set],
    test_categories: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of `table_names(shape)`, from the train questions, each state's train categories,
    the retest, each state's test evaluation and training metrics, the question ids each main state
    trained on (pairs and replay pool), and the untuned model's test categories when the run detects
    them."""
    rounds = shape.main
    stage1 = stage_state(1)
    untuned, one_stage = evaluations[BASE], evaluations[stage1]
    main_models = {"untuned": untuned, "one-stage": one_stage}
    main_pairs = {"one-stage": ("untuned", untuned)}
    if shape.rounds > 1:
        main_models["two-stage"] = evaluations[rounds[1]]
        main_pairs["two-stage"] = ("one-stage", one_stage)
    round_models = {"untuned": untuned} | {f"round {n}": evaluations[state] for n, state in enumerate(rounds, 1)}
    round_labels = list(round_models)
    round_categories = {f"stage {n}": categories[state] for n, state in enumerate(rounds, 1)}
    strategy_models = {f"strategy {k}": evaluations[state] for k, state in shape.stage2.items()}
    # The paper's Tables 3 and 4: the untuned model's four (sampled) categories against the merged new types.
    table3 = analysis.transition_matrix(categories[BASE], merged(categories[stage1]))
    table4 = analysis.transition_matrix(categories[BASE], merged(retest))
    graph_comparisons = {"stage 1": (categories[BASE], categories[stage1])}
    graph_comparisons |= {
        f"stage 2, strategy {k}": (categories[stage1], categories[state]) for k, state in shape.stage2.items()
    }
    tables = {
        "table3-transitions-stage1": table3,
        "table4-transitions-retest": table4,
        "table3-minus-table4": analysis.transition_difference(table3, table4),
        "table5-entity-graph": graph.paper_table5(questions, categories[BASE], categories[stage1]),
        "entity-graph-control": pd.concat(
            [
                graph.controlled_table(questions, before, after, name)
                for name, (before, after) in graph_comparisons.items()
            ],
            ignore_index=True,
        ),
        "table7-accuracy": analysis.accuracy_table(main_models, main_pairs),
        "table10-category-counts": analysis.category_counts_by_stage({"untuned": categories[BASE]} | round_categories),
        "knowledge-gain": analysis.knowledge_gain(
            round_categories,
            {"untuned": categories[BASE], "retest": retest},
            {f"stage {n}": set().union(*(trained_on[s] for s in rounds[:n])) for n in range(1, len(rounds) + 1)},
        ),
        "table11-rounds": analysis.accuracy_table(
            round_models,
            {label: (previous, round_models[previous]) for previous, label in zip(round_labels, round_labels[1:])},
        ),
        "training-metrics": pd.concat(
            [table.assign(state=state) for state, table in metrics.items()], ignore_index=True
        ),
    }
    if shape.rounds > 1:
        table8 = analysis.accuracy_table(strategy_models, {name: ("one-stage", one_stage) for name in strategy_models})
        table8.insert(1, "data", [get_strategy(k).description for k in shape.stage2])
        tables["table8-strategies"] = table8
        tables["table12-transitions-stage2"] = pd.concat(
            [
                analysis.transition_matrix(merged(categories[stage1]), merged(categories[state])).assign(strategy=k)
                for k, state in shape.stage2.items()
            ],
            ignore_index=True,
        )
    if shape.detects_test:
        tables["table9-accuracy-by-category"] = analysis.accuracy_by_category(
            {"untuned": untuned, "one-stage": one_stage} | strategy_models, test_categories
        )
    if shape.epoch_sweep:
        tables["table6-epoch-sweep"] = analysis.epoch_sweep_table(
            {epochs: metrics[state] for epochs, state in shape.sweep_states.items()}
        )
    names = table_names(shape)
    assert set(tables) == set(names), sorted(set(tables) ^ set(names))
    return {name: tables[name] for name in names}
