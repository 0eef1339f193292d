"""The tables of a run, in one registry (`TABLES`): each table's name, its title, which runs make
it (from their shape), how it is computed from the states' outputs, and its reading, in the order
of the report page. The one place that says so: the workflow takes the names from here, the tables
step computes them, and the report shows them with their titles and readings in this order.

A table named after the paper (`table<N>-...`) computes what the paper's table does; what the
project adds (the controlled entity graph, the knowledge gain against the retest, the noise floors,
the controls, the seeds, the answer prior) has a name of its own. docs/paper.md maps each to the paper."""

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from gradual import analysis, graph, prior, readings
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


@dataclass(frozen=True)
class TableInputs:
    """What the tables are computed from: the train questions, each state's train categories, the
    retests (`shape.retested`), each state's test evaluation, training metrics and dev answers per
    epoch, the question ids each main state trained on, the untuned and main states' detection
    answers on train, and the untuned model's test categories where the run detects them."""

    shape: RunShape
    questions: pd.DataFrame
    categories: dict[str, pd.DataFrame]
    retests: dict[str, pd.DataFrame]
    evaluations: dict[str, pd.DataFrame]
    metrics: dict[str, pd.DataFrame]
    dev_scores: dict[str, pd.DataFrame]
    trained_on: dict[str, set]
    greedy: dict[str, pd.DataFrame]
    match_mode: str = "substring"
    test_categories: pd.DataFrame | None = None

    def accuracies(self, models: dict[str, str]) -> pd.DataFrame:
        """Tables 7 and 8: each model (label -> state), against the model `_comparisons` names for it."""
        comparisons = _comparisons(self.shape).items()
        against = {model: (name, self.evaluations[state]) for model, (_, name, state) in comparisons}
        return analysis.accuracy_table(
            {model: self.evaluations[state] for model, state in models.items()},
            {model: against[model] for model in models if model in against},
        )

    def since_stage1(self, after: pd.DataFrame) -> pd.DataFrame:
        """Transitions from stage 1's categories (Table 12's rows), both merged."""
        return analysis.transition_matrix(merged(self.categories[stage_state(1)]), merged(after))

    def table12(self) -> dict[int, pd.DataFrame]:
        """Table 12 per strategy."""
        return {k: self.since_stage1(self.categories[state]) for k, state in self.shape.stage2.items()}

    @property
    def round_categories(self) -> dict[str, pd.DataFrame]:
        return {f"stage {n}": self.categories[state] for n, state in enumerate(self.shape.main, 1)}


# How each table is computed (`TABLES` names them): the paper's tables, then what the project adds.


def _table3(run: TableInputs) -> pd.DataFrame:
    """The paper's Table 3: the untuned model's four (sampled) categories against stage 1's merged ones."""
    return analysis.transition_matrix(run.categories[BASE], merged(run.categories[stage_state(1)]))


def _table4(run: TableInputs) -> pd.DataFrame:
    """Table 4: the same against a retest of the untuned model."""
    return analysis.transition_matrix(run.categories[BASE], merged(run.retests[BASE]))


def _table3_minus_table4(run: TableInputs) -> pd.DataFrame:
    return analysis.transition_difference(_table3(run), _table4(run))


def _by_relation(run: TableInputs) -> pd.DataFrame:
    retest = run.retests[BASE] if run.shape.floors else None
    return analysis.transitions_by_relation(run.categories[BASE], run.categories[stage_state(1)], retest)


def _table5(run: TableInputs) -> pd.DataFrame:
    return graph.paper_table5(run.questions, run.categories[BASE], run.categories[stage_state(1)])


def _graph_control(run: TableInputs) -> pd.DataFrame:
    stage1 = run.categories[stage_state(1)]
    comparisons = {"stage 1": (run.categories[BASE], stage1)}
    comparisons |= {f"stage 2, strategy {k}": (stage1, run.categories[state]) for k, state in run.shape.stage2.items()}
    return pd.concat(
        [graph.controlled_table(run.questions, before, after, name) for name, (before, after) in comparisons.items()],
        ignore_index=True,
    )


def _answer_prior(run: TableInputs) -> pd.DataFrame:
    return prior.answer_prior(run.questions, run.greedy, run.match_mode)


def _reclassified_prior(run: TableInputs) -> pd.DataFrame:
    return prior.prior_of_groups(run.questions, run.categories[BASE], run.categories[stage_state(1)])


def _table7(run: TableInputs) -> pd.DataFrame:
    models = {"untuned": BASE, "one-stage": stage_state(1)}
    return run.accuracies(models | ({"two-stage": run.shape.main[1]} if run.shape.rounds > 1 else {}))


def _table8(run: TableInputs) -> pd.DataFrame:
    """Each stage-2 strategy (and control) against the model `_comparisons` names, with its data."""
    shape = run.shape
    models = {f"strategy {k}": state for k, state in shape.stage2.items()}
    table = run.accuracies(models | {f"control {c}": state for c, state in shape.control_states.items()})
    data = [get_strategy(k).description for k in shape.stage2] + [CONTROLS[c] for c in shape.control_states]
    table.insert(1, "data", data)
    return table


def _table10(run: TableInputs) -> pd.DataFrame:
    return analysis.category_counts_by_stage({"untuned": run.categories[BASE]} | run.round_categories)


def _knowledge_gain(run: TableInputs) -> pd.DataFrame:
    rounds = run.shape.main
    baselines = {"untuned": run.categories[BASE]} | ({"retest": run.retests[BASE]} if run.shape.floors else {})
    trained = {f"stage {n}": set().union(*(run.trained_on[s] for s in rounds[:n])) for n in range(1, len(rounds) + 1)}
    return analysis.knowledge_gain(run.round_categories, baselines, trained)


def _table11(run: TableInputs) -> pd.DataFrame:
    """Each round against the one before."""
    models = {"untuned": run.evaluations[BASE]}
    models |= {f"round {n}": run.evaluations[state] for n, state in enumerate(run.shape.main, 1)}
    labels = list(models)
    return analysis.accuracy_table(
        models, {label: (previous, models[previous]) for previous, label in zip(labels, labels[1:])}
    )


def _epoch_selection(run: TableInputs) -> pd.DataFrame:
    return analysis.epoch_selection_table(run.metrics, run.dev_scores)


def _training_metrics(run: TableInputs) -> pd.DataFrame:
    return pd.concat([table.assign(state=state) for state, table in run.metrics.items()], ignore_index=True)


def _table12(run: TableInputs) -> pd.DataFrame:
    return pd.concat([table.assign(strategy=k) for k, table in run.table12().items()], ignore_index=True)


def _controls(run: TableInputs) -> pd.DataFrame:
    return pd.concat(
        [run.since_stage1(run.categories[state]).assign(control=c) for c, state in run.shape.control_states.items()],
        ignore_index=True,
    )


def _stage1_retest(run: TableInputs) -> pd.DataFrame:
    """Transitions on a retest of stage 1: the noise floor of Table 12."""
    return run.since_stage1(run.retests[stage_state(1)])


def _table12_minus_retest(run: TableInputs) -> pd.DataFrame:
    floor = _stage1_retest(run)
    return pd.concat(
        [analysis.transition_difference(table, floor).assign(strategy=k) for k, table in run.table12().items()],
        ignore_index=True,
    )


def _table9(run: TableInputs) -> pd.DataFrame:
    models = {"untuned": BASE, "one-stage": stage_state(1)} | {f"strategy {k}": s for k, s in run.shape.stage2.items()}
    return analysis.accuracy_by_category(
        {model: run.evaluations[state] for model, state in models.items()}, run.test_categories
    )


def _table6(run: TableInputs) -> pd.DataFrame:
    return analysis.epoch_sweep_table({epochs: run.metrics[state] for epochs, state in run.shape.sweep_states.items()})


def _seeds(run: TableInputs) -> pd.DataFrame:
    return analysis.seed_spread(_seed_comparisons(run.shape, run.evaluations))


@dataclass(frozen=True)
class Table:
    """One table of a run: its file name, its title on the report page, which runs make it, how it is
    computed (None: by another step) and its one-line reading on the page."""

    name: str
    title: str
    made: Callable[[RunShape], bool]
    build: Callable[[TableInputs], pd.DataFrame] | None
    reading: readings.Reading


def every_run(shape: RunShape) -> bool:
    """A table's or plot's `made`: every run makes it."""
    return True


def _two_stage(shape: RunShape) -> bool:
    return shape.rounds > 1


# The registry: every table, in the order of the report page. A table added here is made by the
# tables step, written as Parquet and Markdown, and shown on the page with its title and reading.
CATEGORY_COUNTS = "table2-categories"  # the untuned model's category counts per relation (categories step)
TABLES = (
    Table(CATEGORY_COUNTS, "Table 2: categories of the train questions per relation (untuned model)",
          every_run, None, readings.categories),
    Table("table7-accuracy", "Table 7: test accuracy of the untuned, one-stage and two-stage models",
          every_run, _table7, readings.accuracy),
    Table("seeds", "Training seeds: each model's accuracy and paired difference over the seeds (ours)",
          lambda shape: len(shape.seeds) > 1, _seeds, readings.seeds),
    Table("table8-strategies", "Table 8: stage-2 data strategies against one-stage (and our controls against "
          "strategy 5)",
          _two_stage, _table8, readings.accuracy),
    Table("table11-rounds", "Table 11: rounds of gradual fine-tuning",
          every_run, _table11, readings.accuracy),
    Table("table9-accuracy-by-category", "Table 9: test accuracy per category of the untuned model",
          lambda shape: shape.detects_test, _table9, readings.accuracy_by_category),
    Table("table3-transitions-stage1", "Table 3: category transitions of the train questions after stage 1 "
          "(rows: the untuned model's categories)",
          every_run, _table3, readings.transitions("after stage 1")),
    Table("table4-transitions-retest", "Table 4: transitions on a retest of the untuned model (noise baseline)",
          every_run, _table4, readings.retest),
    Table("table3-minus-table4", "Table 3 minus Table 4: transitions beyond retest noise (both on fresh prompts)",
          lambda shape: shape.floors, _table3_minus_table4,
          readings.transitions("beyond retest noise (Table 3 minus Table 4)", difference=True)),
    Table("transitions-by-relation", "Table 3's key transitions per relation, against the retest (ours)",
          every_run, _by_relation, readings.by_relation),
    Table("table12-transitions-stage2", "Table 12: category transitions of the train questions after stage 2",
          _two_stage, _table12, readings.per_group("strategy", "Strategy", "after stage 2")),
    Table("retest-stage1", "Transitions on a retest of stage 1 (ours): the noise floor of Table 12",
          lambda shape: shape.rounds > 1 and shape.floors, _stage1_retest, readings.stage1_retest),
    Table("table12-minus-retest", "Table 12 minus the retest of stage 1: stage-2 transitions beyond noise (ours)",
          lambda shape: shape.rounds > 1 and shape.floors, _table12_minus_retest,
          readings.per_group("strategy", "Strategy", "beyond stage 1's retest", difference=True)),
    Table("transitions-controls", "Transitions after each stage-2 control, from stage 1's categories, as Table 12 "
          "(ours)",
          lambda shape: bool(shape.control_states), _controls,
          readings.per_group("control", "Control", "after the control")),
    Table("table10-category-counts", "Table 10: train categories after each stage",
          every_run, _table10, readings.category_counts),
    Table("knowledge-gain", "Knowledge gain: HighlyKnown train pairs gained (the paper's 24%, from Table 10), "
          "also on pairs never trained on and against the retest",
          every_run, _knowledge_gain, readings.knowledge_gain),
    Table("table5-entity-graph", "Table 5: nodes of the graph of the Initial and the WeaklyKnown -> MaybeKnown pairs",
          every_run, _table5, readings.paper_graph),
    Table("entity-graph-control", "Entity graph with a control (ours): reclassified pairs linked to Initial "
          "entities against pairs of the same origin that stayed",
          every_run, _graph_control, readings.graph_control),
    Table("answer-prior", "Answer prior: share of greedy answers that are the relation's most frequent train "
          "answer (ours)",
          every_run, _answer_prior, readings.answer_prior),
    Table("answer-prior-reclassified", "Answer prior of the reclassified pairs: gold answer among the relation's "
          "five most frequent, against the control (ours)",
          every_run, _reclassified_prior, readings.reclassified_prior),
    Table("table6-epoch-sweep", "Table 6: one-stage fine-tuning for different epoch counts",
          lambda shape: bool(shape.epoch_sweep), _table6, readings.epoch_sweep),
    Table("epoch-selection", "Epoch selection: could the dev set tell the chosen epoch from the last? (ours)",
          every_run, _epoch_selection, readings.epoch_selection),
    Table("training-metrics", "Training: loss and accuracy per epoch of every trained state",
          every_run, _training_metrics, readings.training_metrics),
)  # fmt: skip
TABLE = {table.name: table for table in TABLES}


def table_names(shape: RunShape) -> list[str]:
    """The tables the tables step makes for a run of this shape, in the page's order."""
    return [table.name for table in TABLES if table.build is not None and table.made(shape)]


def make_tables(run: TableInputs) -> dict[str, pd.DataFrame]:
    """Every table of `table_names(run.shape)`."""
    return {name: TABLE[name].build(run) for name in table_names(run.shape)}
