"""The tables of a run: which ones it makes (from its shape) and how each is computed from the
states' outputs. The one place that says so: the workflow takes the names from here, the script
only reads inputs and writes them, the report reads them back.

A table named after the paper (`table<N>-...`) computes what the paper's table does; what the
project adds (the controlled entity graph, the knowledge gain against the retest, the noise floors,
the controls, the seeds, the answer prior) has a name of its own. docs/paper.md maps each to the paper."""

from dataclasses import dataclass

import pandas as pd

from gradual import analysis, graph, prior
from gradual.categories import merge_unknown
from gradual.errors import InputError
from gradual.method import CONTROLS, get_strategy
from gradual.stages import (
    BASE,
    PAPER_STRATEGY,
    control_state,
    main_states,
    main_strategy,
    seed_suffixes,
    stage_state,
    sweep_state,
    trained_states,
    with_seed,
)


@dataclass(frozen=True)
class RunShape:
    """What a run contains, as far as its tables are concerned."""

    rounds: int
    strategies: tuple[int, ...]
    epoch_sweep: tuple[int, ...] = ()
    detects_test: bool = False  # the untuned model's categories of the test questions (Table 9)
    stage1_epochs: int | None = None  # a sweep count equal to it is stage 1 itself
    controls: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)  # training seeds; the first one's states carry no suffix
    redetect_prompts: str = "fresh"

    def __post_init__(self):
        if self.controls and (PAPER_STRATEGY not in self.strategies or self.rounds < 2):
            raise InputError(
                f"method.controls: the controls are matched on strategy {PAPER_STRATEGY} and compared with it; "
                f"add {PAPER_STRATEGY} to method.strategies (and run rounds >= 2)"
            )

    @classmethod
    def from_config(cls, config: dict) -> "RunShape":
        method = config["method"]
        return cls(
            rounds=method["rounds"],
            strategies=tuple(method["strategies"]),
            epoch_sweep=tuple(method["epoch_sweep"]),
            detects_test="test" in config["detection"]["splits"],
            stage1_epochs=config["training"]["stage1"]["epochs"],
            controls=tuple(method["controls"]),
            seeds=tuple(config["training"]["seeds"]),
            redetect_prompts=method["redetect_prompts"],
        )

    @property
    def seed_suffixes(self) -> dict[int, int | None]:
        """Each training seed and what its states' names carry (None for the first)."""
        return seed_suffixes(list(self.seeds))

    @property
    def trained(self) -> list[str]:
        controls = list(self.controls)
        return trained_states(self.rounds, list(self.strategies), controls, list(self.seed_suffixes.values()))

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
        """The state of each round on the main strategy (round 1 is stage 1), first seed."""
        return main_states(self.rounds, list(self.strategies))

    @property
    def stage2(self) -> dict[int, str]:
        return {k: stage_state(2, k) for k in self.strategies} if self.rounds > 1 else {}

    @property
    def control_states(self) -> dict[str, str]:
        return {c: control_state(c) for c in self.controls} if self.rounds > 1 else {}

    @property
    def floors(self) -> bool:
        """Whether re-detection draws fresh prompts, so that retests measure the same way (noise floors)."""
        return self.redetect_prompts == "fresh"

    @property
    def retested(self) -> list[str]:
        """The states with a retest on train: the untuned model, and stage 1 as the floor of Table 12."""
        return [BASE] + ([stage_state(1)] if self.floors and self.rounds > 1 else [])

    def input_states(self) -> dict[str, list[str]]:
        """The states whose outputs the tables read, per kind of output, in the order they are read."""
        return {
            "categories": [BASE, *self.trained],
            "retest": self.retested,
            "evaluation": [BASE, *self.trained, *self.sweep],
            "metrics": [*self.trained, *self.sweep],
            "dev_scores": [*self.trained, *self.sweep],
            "training": self.main,  # the examples each round trained on
            "greedy": [BASE, *self.main, *self.control_states.values()],  # detection answers: the answer prior
        }


def table_names(shape: RunShape) -> list[str]:
    """The tables a run of this shape makes (paper table numbers first in their names)."""
    names = ["table3-transitions-stage1", "table4-transitions-retest"]
    names += ["table3-minus-table4"] if shape.floors else []
    names += [
        "transitions-by-relation",
        "table5-entity-graph",
        "entity-graph-control",
        "answer-prior",
        "answer-prior-reclassified",
        "table7-accuracy",
        "table10-category-counts",
        "knowledge-gain",
        "table11-rounds",
        "epoch-selection",
        "training-metrics",
    ]
    names += ["table8-strategies", "table12-transitions-stage2"] if shape.rounds > 1 else []
    names += ["retest-stage1", "table12-minus-retest"] if shape.rounds > 1 and shape.floors else []
    names += ["transitions-controls"] if shape.control_states else []
    names += ["table9-accuracy-by-category"] if shape.detects_test else []
    names += ["table6-epoch-sweep"] if shape.epoch_sweep else []
    names += ["seeds"] if len(shape.seeds) > 1 else []
    return names


def merged(table: pd.DataFrame) -> pd.DataFrame:
    """A category table with WeaklyKnown and Unknown as one WeaklyOrUnknown: the new side of the
    paper's transition tables (re-detection after fine-tuning draws no samples)."""
    return table.assign(category=merge_unknown(table["category"]))


def _comparisons(shape: RunShape) -> dict[str, tuple[str, str, str]]:
    """Per compared model of Tables 7 and 8: (its state, the model it is compared with, that state).
    One-stage against untuned, two-stage and each strategy against one-stage, each control against
    strategy 5."""
    stage1 = stage_state(1)
    pairs = {"one-stage": (stage1, "untuned", BASE)}
    if shape.rounds > 1:
        pairs["two-stage"] = (shape.main[1], "one-stage", stage1)
        pairs |= {f"strategy {k}": (state, "one-stage", stage1) for k, state in shape.stage2.items()}
        main = main_strategy(list(shape.strategies))
        pairs |= {f"control {c}": (state, f"strategy {main}", stage_state(2, main))
                  for c, state in shape.control_states.items()}  # fmt: skip
    return pairs


def _seed_comparisons(shape: RunShape, evaluations: dict[str, pd.DataFrame]) -> dict[str, tuple[str, dict, dict]]:
    """`_comparisons`, both sides over the seeds."""

    def over_seeds(state: str) -> dict[int, pd.DataFrame]:
        """The state's results per training seed (the untuned model's are every seed's)."""
        return {seed: evaluations[state if state == BASE else with_seed(state, suffix)]
                for seed, suffix in shape.seed_suffixes.items()}  # fmt: skip

    return {
        model: (name, over_seeds(state), over_seeds(reference))
        for model, (state, name, reference) in _comparisons(shape).items()
    }


def make_tables(
    shape: RunShape,
    questions: pd.DataFrame,
    categories: dict[str, pd.DataFrame],
    retests: dict[str, pd.DataFrame],
    evaluations: dict[str, pd.DataFrame],
    metrics: dict[str, pd.DataFrame],
    dev_scores: dict[str, pd.DataFrame],
    trained_on: dict[str, set],
    greedy: dict[str, pd.DataFrame],
    match_mode: str = "substring",
    test_categories: pd.DataFrame | None = None,
) -> dict[str, pd.DataFrame]:
    """Every table of `table_names(shape)`, from the train questions, each state's train categories,
    the retests (`shape.retested`), each state's test evaluation, training metrics and dev answers per
    epoch, the question ids each main state trained on, the untuned and main states' detection
    answers on train, and the untuned model's test categories when the run detects them."""
    rounds = shape.main
    stage1 = stage_state(1)
    retest = retests[BASE]
    untuned, one_stage = evaluations[BASE], evaluations[stage1]
    main_models = {"untuned": untuned, "one-stage": one_stage}
    if shape.rounds > 1:
        main_models["two-stage"] = evaluations[rounds[1]]
    compared = {model: (name, evaluations[state]) for model, (_, name, state) in _comparisons(shape).items()}

    def accuracies(models: dict[str, pd.DataFrame]) -> pd.DataFrame:
        """Tables 7 and 8: each model, and against the state `_comparisons` names for it."""
        return analysis.accuracy_table(models, {model: compared[model] for model in models if model in compared})

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
        "transitions-by-relation": analysis.transitions_by_relation(
            categories[BASE], categories[stage1], retest if shape.floors else None
        ),
        "table5-entity-graph": graph.paper_table5(questions, categories[BASE], categories[stage1]),
        "entity-graph-control": pd.concat(
            [
                graph.controlled_table(questions, before, after, name)
                for name, (before, after) in graph_comparisons.items()
            ],
            ignore_index=True,
        ),
        "answer-prior": prior.answer_prior(questions, greedy, match_mode),
        "answer-prior-reclassified": prior.prior_of_groups(questions, categories[BASE], categories[stage1]),
        "table7-accuracy": accuracies(main_models),
        "table10-category-counts": analysis.category_counts_by_stage({"untuned": categories[BASE]} | round_categories),
        "knowledge-gain": analysis.knowledge_gain(
            round_categories,
            {"untuned": categories[BASE]} | ({"retest": retest} if shape.floors else {}),
            {f"stage {n}": set().union(*(trained_on[s] for s in rounds[:n])) for n in range(1, len(rounds) + 1)},
        ),
        "table11-rounds": analysis.accuracy_table(
            round_models,
            {label: (previous, round_models[previous]) for previous, label in zip(round_labels, round_labels[1:])},
        ),
        "epoch-selection": analysis.epoch_selection_table(metrics, dev_scores),
        "training-metrics": pd.concat(
            [table.assign(state=state) for state, table in metrics.items()], ignore_index=True
        ),
    }
    if shape.floors:
        tables["table3-minus-table4"] = analysis.transition_difference(table3, table4)
    if shape.rounds > 1:
        controls = {f"control {c}": evaluations[state] for c, state in shape.control_states.items()}
        table8 = accuracies(strategy_models | controls)
        data = [get_strategy(k).description for k in shape.stage2] + [CONTROLS[c] for c in shape.control_states]
        table8.insert(1, "data", data)
        tables["table8-strategies"] = table8
        def since_stage1(after: pd.DataFrame) -> pd.DataFrame:
            """Transitions from stage 1's categories (Table 12's rows), both merged."""
            return analysis.transition_matrix(merged(categories[stage1]), merged(after))

        table12 = {k: since_stage1(categories[state]) for k, state in shape.stage2.items()}
        tables["table12-transitions-stage2"] = pd.concat(
            [table.assign(strategy=k) for k, table in table12.items()], ignore_index=True
        )
        if shape.control_states:
            tables["transitions-controls"] = pd.concat(
                [since_stage1(categories[state]).assign(control=c) for c, state in shape.control_states.items()],
                ignore_index=True,
            )
        if shape.floors:
            floor = since_stage1(retests[stage1])
            tables["retest-stage1"] = floor
            tables["table12-minus-retest"] = pd.concat(
                [analysis.transition_difference(table, floor).assign(strategy=k) for k, table in table12.items()],
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
    if len(shape.seeds) > 1:
        tables["seeds"] = analysis.seed_spread(_seed_comparisons(shape, evaluations))
    names = table_names(shape)
    assert set(tables) == set(names), sorted(set(tables) ^ set(names))
    return {name: tables[name] for name in names}
