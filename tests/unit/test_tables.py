import pandas as pd
import pytest

from gradual.io import write_markdown
from gradual.tables import RunShape, TableInputs, make_tables, table_names

H, M, W, U, WU = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "WeaklyOrUnknown"
IDS = ["q1", "q2", "q3", "q4"]
QUESTIONS = pd.DataFrame(
    {
        "question_id": IDS,
        "relation": "P36",
        "question": [f"What is the capital of {c}?" for c in ("A", "B", "C", "D")],
        "answers": [["X"], ["Y"], ["X"], ["Z"]],
        "subject": ["A", "B", "C", "D"],
    }
)


def categories(*values):
    return pd.DataFrame({"question_id": IDS, "relation": "P36", "category": list(values)})


def evaluation(*correct):
    return pd.DataFrame({"question_id": IDS, "correct": list(correct)})


def metrics():
    return pd.DataFrame(
        {
            "epoch": [1, 2],
            "train_loss": [1.0, 0.5],
            "dev_accuracy": [0.25, 0.5],
            "test_accuracy": [0.25, 0.5],
            "best": [False, True],
        }
    )


def dev_scores():
    """Epoch 1 answers q1 on dev, epoch 2 q1 and q2 (metrics' dev accuracies 0.25 and 0.5)."""
    return pd.DataFrame(
        {
            "epoch": [1] * 4 + [2] * 4,
            "question_id": IDS * 2,
            "correct": [True, False, False, False, True, True, False, False],
        }
    )


def greedy(*answers):
    return pd.DataFrame({"question_id": IDS, "mode": "greedy", "answer": list(answers)})


def test_table_names_follow_the_run_shape():
    one_stage = table_names(RunShape(rounds=1, strategies=(5,)))
    assert "table8-strategies" not in one_stage and "table5-entity-graph" in one_stage
    assert {"entity-graph-control", "knowledge-gain", "answer-prior", "epoch-selection"} <= set(one_stage)  # ours
    assert "table3-minus-table4" in one_stage  # fresh re-detection prompts: the retest is the matched floor
    full = table_names(RunShape(rounds=2, strategies=(1, 5), epoch_sweep=(3,), detects_test=True, seeds=(0, 1)))
    assert set(full) - set(one_stage) == {
        "table8-strategies",
        "table12-transitions-stage2",
        "retest-stage1",
        "table12-minus-retest",
        "table9-accuracy-by-category",
        "table6-epoch-sweep",
        "seeds",
    }
    controlled = table_names(RunShape(rounds=2, strategies=(5,), controls=("random",)))
    assert set(controlled) - set(table_names(RunShape(rounds=2, strategies=(5,)))) == {"transitions-controls"}
    same = set(table_names(RunShape(rounds=2, strategies=(5,), redetect_prompts="same")))
    assert not same & {"table3-minus-table4", "retest-stage1", "table12-minus-retest"}  # no floor to subtract


def test_input_states_and_main_states():
    shape = RunShape(rounds=3, strategies=(1, 5), epoch_sweep=(2,))
    assert shape.main == ["stage1", "stage2-s5", "stage3-s5"]
    assert shape.input_states()["metrics"] == ["stage1", "stage2-s1", "stage2-s5", "stage3-s5", "sweep-e2"]
    assert shape.input_states()["training"] == ["stage1", "stage2-s5", "stage3-s5"]
    assert shape.input_states()["retest"] == ["base", "stage1"]
    assert shape.stage2 == {1: "stage2-s1", 5: "stage2-s5"}


def test_controls_and_seeds_add_states_and_the_first_seed_keeps_the_plain_names():
    shape = RunShape(rounds=2, strategies=(5,), controls=("continue", "random"), seeds=(3, 7), epoch_sweep=(2,))
    assert shape.trained == [
        "stage1", "stage2-s5", "stage2-continue", "stage2-random",
        "stage1-seed7", "stage2-s5-seed7", "stage2-continue-seed7", "stage2-random-seed7",
    ]  # fmt: skip
    assert shape.sweep == ["sweep-e2"] and shape.main == ["stage1", "stage2-s5"]
    assert shape.control_states == {"continue": "stage2-continue", "random": "stage2-random"}


def test_a_sweep_count_equal_to_stage_1_is_stage_1_itself():
    shape = RunShape(rounds=2, strategies=(5,), epoch_sweep=(15, 10, 20), stage1_epochs=10)
    assert shape.sweep_states == {10: "stage1", 15: "sweep-e15", 20: "sweep-e20"}
    assert shape.sweep == ["sweep-e15", "sweep-e20"] and "sweep-e10" not in shape.trained


def small_run_tables(shape: RunShape) -> dict[str, pd.DataFrame]:
    """The tables of a hand-made run of four questions (strategies 1 and 5 at most)."""
    every_state = {
        "base": (categories(M, W, U, H), evaluation(False, False, False, True)),
        "stage1": (categories(H, M, WU, H), evaluation(True, False, False, True)),
        "stage2-s1": (categories(H, M, WU, H), evaluation(True, False, False, True)),
        "stage2-s5": (categories(H, H, M, H), evaluation(True, True, False, True)),
        "stage2-continue": (categories(H, M, WU, H), evaluation(True, False, True, True)),
        "stage1-seed1": (categories(H, M, WU, H), evaluation(True, True, False, True)),
        "stage2-s5-seed1": (categories(H, H, M, H), evaluation(True, True, False, True)),
        "sweep-e2": (categories(H, M, WU, H), evaluation(True, False, True, True)),
    }
    states = shape.input_states()
    inputs = TableInputs(
        shape,
        QUESTIONS,
        categories={state: every_state[state][0] for state in states["categories"]},
        retests={"base": categories(M, U, U, H), "stage1": categories(H, M, U, H)},
        evaluations={state: every_state[state][1] for state in states["evaluation"]},
        metrics={state: metrics() for state in states["metrics"]},
        dev_scores={state: dev_scores() for state in states["dev_scores"]},
        greedy={state: greedy("X", "Z", "Q", "Z") for state in states["greedy"]},
        trained_on={"stage1": {"q1"}, "stage2-s1": {"q2"}, "stage2-s5": {"q1", "q2", "q4"}},
        test_categories=categories(H, M, U, W),
    )
    return make_tables(inputs)


def test_make_tables_compares_each_state_with_the_one_before():
    shape = RunShape(rounds=2, strategies=(1, 5), detects_test=True)
    states = shape.input_states()
    tables = small_run_tables(shape)
    assert list(tables) == table_names(shape)
    main = tables["table7-accuracy"].set_index("model")
    assert main["accuracy"].tolist() == [0.25, 0.5, 0.75]
    assert main.loc["two-stage", "compared_with"] == "one-stage" and main.loc["two-stage", "gained"] == 1
    strategies = tables["table8-strategies"].set_index("model")
    assert strategies["compared_with"].tolist() == ["one-stage", "one-stage"]
    assert strategies["difference"].tolist() == pytest.approx([0.0, 0.25])
    rounds = tables["table11-rounds"]
    assert rounds["model"].tolist() == ["untuned", "round 1", "round 2"]
    assert rounds["compared_with"].tolist()[1:] == ["untuned", "round 1"]
    # Initial entities {A, X} (q1). Stage 1 reclassified q2 (B-Y: not linked); q3 stayed (C-X: linked by X).
    graph = tables["entity-graph-control"]
    assert graph["comparison"].unique().tolist() == ["stage 1", "stage 2, strategy 1", "stage 2, strategy 5"]
    every = (graph["relation"] == "All") & (graph["unit"] == "pairs") & (graph["origin"] == WU)
    stage1 = graph[every & (graph["comparison"] == "stage 1")]
    assert stage1[["reclassified", "linked_reclassified", "control", "linked_control"]].values.tolist() == [
        [1, 0, 1, 1]
    ]
    transitions = tables["table3-transitions-stage1"].set_index("origin")
    # the untuned model's four categories as rows, the new types merged
    assert transitions.index.tolist() == [H, M, W, U, "Total"] and list(transitions.columns) == [H, M, WU, "Total"]
    assert transitions.loc[M, H] == 1 and transitions.loc[W, M] == 1 and transitions.loc[U, WU] == 1
    difference = tables["table3-minus-table4"].set_index("origin")  # retest: M, U, U, H
    assert difference.loc[M, H] == 1 and difference.loc[W, M] == 1 and difference.loc[W, WU] == -1
    stage2 = tables["table12-transitions-stage2"]
    assert stage2[stage2["strategy"] == 5].set_index("origin").loc[WU, M] == 1  # origin: stage 1, merged
    assert tables["table8-strategies"]["data"].str.startswith("origin HighlyKnown, MaybeKnown or Weakly").tolist() == [
        True,
        False,
    ]
    by_category = tables["table9-accuracy-by-category"]
    assert list(by_category.columns) == ["category", "n", "untuned", "one-stage", "strategy 1", "strategy 5"]
    # Table 5 (the paper's): Initial q1 (A, X); q2 is WeaklyKnown -> MaybeKnown (B, Y): not linked.
    paper = tables["table5-entity-graph"].set_index("relation").loc["All"]
    assert paper[["initial", "reclassified", "linked_reclassified"]].tolist() == [2, 2, 0]
    assert set(tables["training-metrics"]["state"]) == set(states["metrics"])


def test_knowledge_gain_the_papers_way_and_on_pairs_never_trained_on():
    gain = small_run_tables(RunShape(rounds=2, strategies=(1, 5), detects_test=True))["knowledge-gain"]
    rows = gain.set_index(["pairs", "baseline", "stage"])
    # HighlyKnown: untuned q4; stage 1 q1, q4; stage 2 (strategy 5) q1, q2, q4; retest q4.
    assert rows.loc[("all", "untuned", "stage 1"), ["baseline_highly_known", "highly_known", "gain"]].tolist() == [
        1, 2, 1
    ]  # fmt: skip
    assert rows.loc[("all", "untuned", "stage 2"), "gain"] == 2
    assert rows.loc[("all", "untuned", "stage 2"), "gain_vs_stage1"] == pytest.approx(1.0)  # 2 / 1 - 1
    # Never trained on: stage 1 trained q1, so q2-q4 (HighlyKnown q4 before and after: gain 0);
    # stage 2 trained q1, q2, q4 as well, so q3 only, never HighlyKnown.
    assert rows.loc[("never trained on", "untuned", "stage 1"), ["n", "gain"]].tolist() == [3, 0]
    assert rows.loc[("never trained on", "untuned", "stage 2"), ["n", "gain"]].tolist() == [1, 0]
    assert pd.isna(rows.loc[("never trained on", "untuned", "stage 2"), "gain_vs_stage1"])  # stage 1 gained 0


def test_markdown_shows_missing_values_as_empty_cells(tmp_path):
    table = small_run_tables(RunShape(rounds=2, strategies=(5,)))["table7-accuracy"]
    write_markdown(table, tmp_path / "table.md")
    untuned = (tmp_path / "table.md").read_text().splitlines()[2]
    assert untuned.startswith("| untuned") and "nan" not in untuned and "<NA>" not in untuned


def test_the_new_tables_on_the_hand_made_run():
    tables = small_run_tables(RunShape(rounds=2, strategies=(5,), controls=("continue",)))
    # Table 12's floor: stage 1 (H, M, WU, H) against its retest (H, M, U, H): nothing moves
    assert tables["retest-stage1"].set_index("origin").loc["Total", "Total"] == 4
    beyond = tables["table12-minus-retest"].set_index("origin")
    assert beyond.loc[M, H] == 1 and beyond.loc[WU, M] == 1  # stage 2 moved q2 and q3; the retest did not
    by_relation = tables["transitions-by-relation"].set_index(["relation", "transition"])
    # untuned M, W, U, H; stage 1 H, M, WU, H; retest M, U, U, H
    key_cell = by_relation.loc[("All", "MaybeKnown -> HighlyKnown"), ["origin_pairs", "after_stage", "retest"]]
    assert key_cell.tolist() == [
        1, 1, 0
    ]  # fmt: skip
    assert by_relation.loc[("P36", "WeaklyKnown -> MaybeKnown"), "beyond_retest"] == 1
    prior = tables["answer-prior"]
    assert prior["state"].unique().tolist() == ["base", "stage1", "stage2-s5", "stage2-continue"]
    assert prior["top_answer_share"].tolist() == [0.25, 0.25] * 4  # X of X, Z, Q, Z; All and P36
    assert prior.loc[prior["relation"] == "P36", "top_answer"].unique().tolist() == ["x"]
    groups = tables["answer-prior-reclassified"].set_index("group")
    assert groups.loc["reclassified from WeaklyKnown", ["pairs", "gold_in_top"]].tolist() == [1, 1]  # q2, Y
    assert groups.loc["control (stayed never right)", ["pairs", "gold_in_top"]].tolist() == [1, 1]  # q3, X
    selection = tables["epoch-selection"].set_index("state")
    assert selection["decided"].all() and (selection["best_epoch"] == 2).all()  # the best epoch is the last
    table8 = tables["table8-strategies"].set_index("model")
    control = table8.loc["control continue"]
    # continue (T, F, T, T) against strategy 5 (T, T, F, T): q3 gained, q2 lost
    assert (control["compared_with"], control["gained"], control["lost"], control["difference"]) == (
        "strategy 5",
        1,
        1,
        0,
    )
    assert control["data"].startswith("stage 1's own training pairs again")
    # the control left stage 1's categories (H, M, WU, H) as they were, where strategy 5 moved q2 and q3
    continued = tables["transitions-controls"].set_index("origin")
    assert continued["control"].unique().tolist() == ["continue"]
    assert [continued.loc[c, c] for c in (H, M, WU)] == [2, 1, 1] and continued.loc["Total", "Total"] == 4


def test_seeds_give_each_models_spread_and_the_t_interval_of_their_differences():
    tables = small_run_tables(RunShape(rounds=2, strategies=(5,), seeds=(0, 1)))
    one_stage = tables["seeds"].set_index("model").loc["one-stage"]
    # against the untuned (F, F, F, T): seed 0 (T, F, F, T) +0.25, seed 1 (T, T, F, T) +0.5. Mean 0.375, sd
    # 0.17678, standard error 0.125; t(0.975, 1 df) = 12.7062: 0.375 -+ 1.58828. t = 3 on 1 df: p = 0.20483.
    assert one_stage["seeds"] == 2 and one_stage["difference_mean"] == pytest.approx(0.375)
    assert (one_stage["difference_ci_low"], one_stage["difference_ci_high"]) == (
        pytest.approx(-1.21328, abs=1e-5), pytest.approx(1.96328, abs=1e-5)
    )  # fmt: skip
    assert one_stage["p_value"] == pytest.approx(0.20483, abs=1e-5)
    assert one_stage["accuracy_mean"] == pytest.approx(0.625)
    two_stage = tables["seeds"].set_index("model").loc["two-stage"]
    assert two_stage["difference_mean"] == pytest.approx(0.125)  # +0.25 and 0 against each seed's own stage 1
