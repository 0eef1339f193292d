import pandas as pd
import pytest

from gradual.io import write_markdown
from gradual.tables import RunShape, make_tables, table_names

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
        {"epoch": [1, 2], "train_loss": [1.0, 0.5], "dev_accuracy": [0.2, 0.3], "test_accuracy": [0.25, 0.5]}
    )


def test_table_names_follow_the_run_shape():
    one_stage = table_names(RunShape(rounds=1, strategies=(5,)))
    assert "table8-strategies" not in one_stage and "table5-entity-graph" in one_stage
    full = table_names(RunShape(rounds=2, strategies=(1, 5), epoch_sweep=(3,), detects_test=True))
    assert set(full) - set(one_stage) == {
        "table8-strategies",
        "table12-transitions-stage2",
        "table9-accuracy-by-category",
        "table6-epoch-sweep",
    }


def test_input_states_and_main_states():
    shape = RunShape(rounds=3, strategies=(1, 5), epoch_sweep=(2,))
    assert shape.main == ["stage1", "stage2-s5", "stage3-s5"]
    assert shape.input_states()["metrics"] == ["stage1", "stage2-s1", "stage2-s5", "stage3-s1", "stage3-s5", "sweep-e2"]
    assert shape.stage2 == {1: "stage2-s1", 5: "stage2-s5"}


def small_run_tables(shape: RunShape) -> dict[str, pd.DataFrame]:
    """The tables of a hand-made run of four questions (strategies 1 and 5 at most)."""
    every_state = {
        "base": (categories(M, W, U, H), evaluation(False, False, False, True)),
        "stage1": (categories(H, M, WU, H), evaluation(True, False, False, True)),
        "stage2-s1": (categories(H, M, WU, H), evaluation(True, False, False, True)),
        "stage2-s5": (categories(H, H, M, H), evaluation(True, True, False, True)),
    }
    states = shape.input_states()
    return make_tables(
        shape,
        QUESTIONS,
        categories={state: every_state[state][0] for state in states["categories"]},
        retest=categories(M, U, U, H),
        evaluations={state: every_state[state][1] for state in states["evaluation"]},
        metrics={state: metrics() for state in states["metrics"]},
        test_categories=categories(H, M, U, W),
    )


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
    graph = tables["table5-entity-graph"]
    assert graph["comparison"].unique().tolist() == ["stage 1", "stage 2, strategy 1", "stage 2, strategy 5"]
    stage1 = graph[(graph["comparison"] == "stage 1") & (graph["relation"] == "All") & (graph["unit"] == "pairs")]
    assert stage1[["reclassified", "linked_reclassified", "control", "linked_control"]].values.tolist() == [
        [1, 0, 1, 1]
    ]
    transitions = tables["table3-transitions-stage1"].set_index("origin")
    assert transitions.loc[M, H] == 1 and transitions.loc[WU, M] == 1  # base merged to compare
    assert set(tables["training-metrics"]["state"]) == set(states["metrics"])


def test_markdown_shows_missing_values_as_empty_cells(tmp_path):
    table = small_run_tables(RunShape(rounds=2, strategies=(5,)))["table7-accuracy"]
    write_markdown(table, tmp_path / "table.md")
    untuned = (tmp_path / "table.md").read_text().splitlines()[2]
    assert untuned.startswith("| untuned") and "nan" not in untuned and "<NA>" not in untuned
