"""The entity graph on small hand-made data: the paper's Table 5 and the controlled analysis; every
expected value is worked out in the comments."""

import math

import networkx as nx
import pandas as pd
import pytest
from scipy.stats import fisher_exact
from scipy.stats.contingency import odds_ratio

from gradual.graph import (
    CONTROLLED_COLUMNS,
    PAPER_TABLE5_COLUMNS,
    comparison_pairs,
    controlled_table,
    entity_graph,
    entity_pairs,
    graph_tables,
    link_distances,
    linked_entities,
    paper_table5,
    without_subject,
)

H, M, W, U, WU = "HighlyKnown", "MaybeKnown", "WeaklyKnown", "Unknown", "WeaklyOrUnknown"

# name: (question_id, relation, subject, answers, base, stage1, stage2-s1); None = no category in that state.
# Initial before stage 1 (base MaybeKnown): c1 -> I = {france, paris}.
ROWS = {
    "a1": ("P17.train.1", "P17", "Lyon", ["France"], U, M, H),  # reclassified, answer in I: distance 0
    "a2": ("P17.train.2", "P17", "Nice", ["France"], W, WU, M),  # control, linked by the hub "France"
    "a3": ("P17.train.3", "P17", "Marseille", ["France"], U, WU, WU),  # control, distance 0
    "a4": ("P17.train.10", "P17", "Bonn", ["Germany"], U, WU, M),  # control, not linked
    "a5": ("P17.train.11", "P17", "Munich", ["Germany"], H, H, H),  # in no group
    "b0": ("P19.train.0", "P19", None, ["Ulm"], U, M, M),  # no subject: only in without_subject
    "b1": ("P19.train.1", "P19", "Marie Curie", ["Warsaw"], U, M, H),  # reclassified, not linked
    "b2": ("P19.train.2", "P19", "Emmanuel Macron", ["Amiens"], W, WU, None),  # control, not linked
    "b3": ("P19.train.3", "P19", "Angela Merkel", ["Hamburg"], U, WU, M),  # control, not linked
    "b4": ("P19.train.4", "P19", "Victor Hugo", ["paris "], H, H, H),  # HighlyKnown: joins victor hugo to paris
    "c1": ("P36.train.1", "P36", "France", ["Paris", "City of Light"], M, H, H),  # Initial
    "c2": ("P36.train.2", "P36", "Germany", ["Berlin"], U, M, H),  # reclassified, not linked
    "c3": ("P36.train.3", "P36", "Luxembourg", ["Luxembourg"], H, H, H),  # a self-loop
    "p1": ("P50.train.1", "P50", "Les Misérables", ["Victor Hugo"], U, M, M),  # reclassified, distance 1 via b4
}
QUESTIONS = pd.DataFrame(
    [(qid, rel, f"question {qid}", answers, subject) for qid, rel, subject, answers, *_ in ROWS.values()],
    columns=["question_id", "relation", "question", "answers", "subject"],
)
QID = {name: row[0] for name, row in ROWS.items()}


def state(index: int) -> pd.DataFrame:
    rows = [(r[0], r[1], r[index]) for r in ROWS.values() if r[index] is not None]
    return pd.DataFrame(rows, columns=["question_id", "relation", "category"])


BASE, STAGE1, STAGE2 = state(4), state(5), state(6)


def row(table: pd.DataFrame, relation: str, unit: str, origin: str = WU) -> dict:
    """A row of the controlled table; by default the one of every never-right origin together."""
    found = table[(table["relation"] == relation) & (table["unit"] == unit) & (table["origin"] == origin)]
    assert len(found) == 1
    return found.iloc[0].to_dict()


def test_entity_pairs_normalise_and_skip_questions_without_subject():
    pairs = entity_pairs(QUESTIONS).set_index("question_id")
    assert QID["b0"] not in pairs.index
    assert len(pairs) == 13
    assert pairs.loc[QID["p1"], ["subject", "answer"]].tolist() == ["les miserables", "victor hugo"]
    assert pairs.loc[QID["b4"], "answer"] == "paris"  # "paris " and "Paris" (c1) are one entity
    assert pairs.loc[QID["c1"], "answer"] == "paris"  # the first gold answer, not "City of Light"
    # relation order, then ids with numbers compared as numbers: P17.train.10 after P17.train.3
    assert pairs.index[:5].tolist() == [QID[n] for n in ("a1", "a2", "a3", "a4", "a5")]
    assert without_subject(QUESTIONS).to_dict() == {"P17": 0, "P19": 1, "P36": 0, "P50": 0}


def test_entity_graph_nodes_edges_and_self_loop():
    graph = entity_graph(QUESTIONS)
    assert isinstance(graph, nx.MultiGraph)
    # 13 pairs with a subject -> 13 edges; entities: 5 P17 subjects + france, germany; 4 P19 subjects,
    # warsaw, amiens, hamburg, paris; luxembourg, berlin; les miserables -> 18 (ulm of b0 is absent).
    assert graph.number_of_edges() == 13
    assert graph.number_of_nodes() == 18
    assert "ulm" not in graph
    assert sorted(key for _, _, key in graph.edges("paris", keys=True)) == [QID["b4"], QID["c1"]]
    assert list(nx.selfloop_edges(graph, keys=True)) == [("luxembourg", "luxembourg", QID["c3"])]
    assert graph.edges["germany", "berlin", QID["c2"]]["relation"] == "P36"


def test_comparison_pairs_groups_and_distances():
    pairs = comparison_pairs(QUESTIONS, BASE, STAGE1).set_index("question_id")
    groups = pairs["group"].to_dict()
    assert [n for n in ROWS if groups.get(QID[n]) == "initial"] == ["c1"]
    assert [n for n in ROWS if groups.get(QID[n]) == "reclassified"] == ["a1", "b1", "c2", "p1"]
    assert [n for n in ROWS if groups.get(QID[n]) == "control"] == ["a2", "a3", "a4", "b2", "b3"]
    assert pairs.loc[QID["b2"], "before"] == W  # the state before as given; after is merged
    assert pairs.loc[QID["a1"], "after"] == M and pairs.loc[QID["a3"], "after"] == WU
    distance = pairs["distance"]
    assert distance[QID["a1"]] == 0  # its answer france is Initial
    assert distance[QID["a2"]] == 0  # the hub answer links control pairs too
    assert distance[QID["p1"]] == 1  # victor hugo is joined to paris by b4, another pair
    assert pd.isna(distance[QID["c2"]]) and pd.isna(distance[QID["b1"]])


def test_link_distance_never_needs_the_pairs_own_edge():
    # One pair x - f with f Initial: its own edge makes x "adjacent" to f, but the pair is at distance 0
    # because of f itself. A pair x - y with no edge to I besides its own stays unlinked.
    pairs = pd.DataFrame({"question_id": ["q1", "q2"], "relation": "P17", "subject": ["x", "z"], "answer": ["f", "y"]})
    graph = nx.MultiGraph()
    graph.add_edge("x", "f", key="q1")
    graph.add_edge("z", "y", key="q2")
    assert link_distances(graph, pairs, {"f"}).tolist() == [0, pd.NA]


def test_linked_entities_leave_out_the_groups_own_edges():
    graph = nx.MultiGraph()
    graph.add_edge("lyon", "france", key="r1")
    graph.add_edge("nice", "france", key="k1")
    # lyon's only way to I is the edge r1: excluded, not linked; with r1 allowed it is linked.
    assert linked_entities(graph, ["lyon", "france", "nice"], {"france"}, {"r1", "k1"}) == {"france"}
    assert linked_entities(graph, ["lyon", "france"], {"france"}, {"k1"}) == {"lyon", "france"}


def test_controlled_table_stage1_all_rows():
    table = controlled_table(QUESTIONS, BASE, STAGE1, "base -> stage1")
    assert list(table.columns) == CONTROLLED_COLUMNS
    # origins WeaklyKnown, Unknown (the untuned model's detection samples), then both together
    assert table["origin"].tolist() == [W] * 10 + [U] * 10 + [WU] * 10
    assert table["relation"].tolist() == ["All", "All", "P17", "P17", "P19", "P19", "P36", "P36", "P50", "P50"] * 3
    assert table["unit"].tolist() == ["pairs", "nodes"] * 15
    assert set(table["comparison"]) == {"base -> stage1"}

    pairs = row(table, "All", "pairs")
    # Reclassified a1 (d0), p1 (d1), b1, c2 -> 2 of 4; control a2, a3 (d0), a4, b2, b3 -> 2 of 5.
    # b0 went Unknown -> MaybeKnown but has no subject: only in without_subject.
    assert pairs["without_subject"] == 1
    assert pairs["initial"] == 1
    assert (pairs["reclassified"], pairs["linked_reclassified"], pairs["linked_fraction"]) == (4, 2, 0.5)
    assert (pairs["control"], pairs["linked_control"], pairs["control_fraction"]) == (5, 2, 0.4)
    # 2x2 [[2, 2], [2, 3]]: margins 4, 5 and 4, 5 of 9; P(a) = C(4,a) C(5,4-a) / 126 = 5, 40, 60, 20, 1 / 126
    # for a = 0..4; observed a = 2 is the most likely, so the two-sided p-value is 126/126 = 1.
    assert pairs["p_value"] == pytest.approx(1.0)
    assert pairs["p_value"] == pytest.approx(fisher_exact([[2, 2], [2, 3]]).pvalue)
    expected = odds_ratio([[2, 2], [2, 3]], kind="conditional")
    assert pairs["odds_ratio"] == pytest.approx(expected.statistic)
    low, high = expected.confidence_interval(0.95)
    assert (pairs["odds_ratio_ci_low"], pairs["odds_ratio_ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert pairs["linked_ci_low"] < 0.5 < pairs["linked_ci_high"]

    nodes = row(table, "All", "nodes")
    # Reclassified entities lyon, france, germany, berlin, marie curie, warsaw, les miserables, victor hugo:
    # france is in I; victor hugo is next to paris through b4 (not a reclassified pair); lyon reaches france
    # only through a1, a reclassified pair's own edge, so it is not linked -> 2 of 8.
    assert (nodes["initial"], nodes["reclassified"], nodes["linked_reclassified"]) == (2, 8, 2)
    assert nodes["linked_fraction"] == 0.25
    # Control entities nice, marseille, france, bonn, germany, emmanuel macron, amiens, angela merkel, hamburg:
    # only france (nice and marseille reach it through their own control edges) -> 1 of 9.
    assert (nodes["control"], nodes["linked_control"]) == (9, 1)
    assert nodes["control_fraction"] == pytest.approx(1 / 9)
    for column in ("linked_ci_low", "control_ci_high", "odds_ratio", "odds_ratio_ci_low", "p_value"):
        assert math.isnan(nodes[column])  # no inference on entities
    assert "| comparison" in table.to_markdown(index=False)


def test_controlled_table_stage1_rows_per_origin_add_up_to_the_pooled_row():
    table = controlled_table(QUESTIONS, BASE, STAGE1, "base -> stage1")
    unknown, weakly = row(table, "All", "pairs", U), row(table, "All", "pairs", W)
    # Unknown: reclassified a1 (d0), b1, c2, p1 (d1) -> 2 of 4; control a3 (d0), a4, b3 -> 1 of 3.
    assert [unknown[c] for c in ("reclassified", "linked_reclassified", "control", "linked_control")] == [4, 2, 3, 1]
    # WeaklyKnown: none reclassified (NaN, no test); control a2 (d0, the hub france), b2 -> 1 of 2.
    assert [weakly[c] for c in ("reclassified", "linked_reclassified", "control", "linked_control")] == [0, 0, 2, 1]
    assert math.isnan(weakly["linked_fraction"]) and math.isnan(weakly["p_value"])
    assert unknown["p_value"] == pytest.approx(fisher_exact([[2, 2], [1, 2]]).pvalue)
    pooled = row(table, "All", "pairs")
    for column in ("reclassified", "linked_reclassified", "control", "linked_control"):
        assert unknown[column] + weakly[column] == pooled[column]
    assert unknown["initial"] == weakly["initial"] == 1  # the Initial pair c1 in every origin's rows
    # Unknown control nodes marseille, france, bonn, germany, angela merkel, hamburg: france only
    # (marseille reaches it through a3, a pair of the group) -> 1 of 6; WeaklyKnown control nodes
    # nice, france, emmanuel macron, amiens: france (nice only through a2, its group's own) -> 1 of 4.
    nodes = {origin: row(table, "All", "nodes", origin) for origin in (U, W)}
    assert (nodes[U]["reclassified"], nodes[U]["linked_reclassified"]) == (8, 2)
    assert [nodes[U]["control"], nodes[U]["linked_control"], nodes[W]["control"], nodes[W]["linked_control"]] == [
        6, 1, 4, 1
    ]  # fmt: skip


def test_controlled_table_stage1_per_relation_rows():
    table = controlled_table(QUESTIONS, BASE, STAGE1, "base -> stage1")
    p17 = row(table, "P17", "pairs")
    # a1 reclassified and linked; a2, a3 (linked), a4 control; c1 is P36, so no Initial pair here.
    assert [p17[c] for c in ("without_subject", "initial", "reclassified", "linked_reclassified")] == [0, 0, 1, 1]
    assert (p17["control"], p17["linked_control"]) == (3, 2)
    assert p17["p_value"] == pytest.approx(fisher_exact([[1, 0], [2, 1]]).pvalue)
    p17_nodes = row(table, "P17", "nodes")
    # reclassified {lyon, france}: france; control {nice, marseille, france, bonn, germany}: france
    assert [p17_nodes[c] for c in ("reclassified", "linked_reclassified", "control", "linked_control")] == [2, 1, 5, 1]

    p19 = row(table, "P19", "pairs")
    assert [p19[c] for c in ("without_subject", "reclassified", "linked_reclassified", "control")] == [1, 1, 0, 2]
    assert p19["linked_fraction"] == 0.0 and p19["control_fraction"] == 0.0

    p36 = row(table, "P36", "pairs")
    # c1 Initial, c2 reclassified unlinked, c3 HighlyKnown throughout; no control pair: NaN, not an error
    assert [p36[c] for c in ("initial", "reclassified", "linked_reclassified", "control")] == [1, 1, 0, 0]
    for column in ("control_fraction", "control_ci_low", "control_ci_high", "odds_ratio", "p_value"):
        assert math.isnan(p36[column])
    assert row(table, "P36", "nodes")["initial"] == 2  # france, paris

    p50 = row(table, "P50", "pairs")
    assert (p50["reclassified"], p50["linked_reclassified"], p50["control"]) == (1, 1, 0)
    assert row(table, "P50", "nodes")["linked_reclassified"] == 1  # victor hugo, through b4


def test_controlled_table_stage2_before_is_already_merged_and_missing_categories_are_left_out():
    table = controlled_table(QUESTIONS, STAGE1, STAGE2, "stage1 -> stage2-s1")
    assert set(table["origin"]) == {WU}  # stage 1 was re-detected without samples: one origin row
    pairs = row(table, "All", "pairs")
    # Initial: stage-1 MaybeKnown pairs with a subject a1, b1, c2, p1 (b0 has none):
    # I = {lyon, france, marie curie, warsaw, germany, berlin, les miserables, victor hugo}.
    # Stage-1 WeaklyOrUnknown: a2 -> M (france, d0), a4 -> M (germany, d0), b3 -> M (not linked),
    # a3 -> WU (france, d0), b2 has no stage-2 category: left out.
    assert pairs["initial"] == 4
    assert (pairs["reclassified"], pairs["linked_reclassified"]) == (3, 2)
    assert (pairs["control"], pairs["linked_control"]) == (1, 1)
    assert pairs["without_subject"] == 1
    # 2x2 [[2, 1], [1, 0]]: margins 3, 1 and 3, 1 of 4; a = 2 or 3, P(3) = 1/4, P(2) = 3/4 -> p = 1
    assert pairs["p_value"] == pytest.approx(1.0)
    assert pairs["p_value"] == pytest.approx(fisher_exact([[2, 1], [1, 0]]).pvalue)


def test_controlled_table_known_p_value_and_wilson_interval():
    # Initial: "France" -> "Paris"; ten reclassified pairs, eight of them answered "France" (distance 0)
    # and two not linked; four control pairs, none linked.
    rows = [("i", "P36", "France", "Paris", M, H)]
    rows += [(f"r{k}", "P17", f"Town {k}", "France", U, M) for k in range(8)]
    rows += [(f"r{k}", "P17", f"Town {k}", "Spain", U, M) for k in range(8, 10)]
    rows += [(f"c{k}", "P19", f"Person {k}", f"Village {k}", U, WU) for k in range(4)]
    questions = pd.DataFrame(
        [(q, rel, q, [answer], subject) for q, rel, subject, answer, _, _ in rows],
        columns=["question_id", "relation", "question", "answers", "subject"],
    )
    before = pd.DataFrame([(r[0], r[4]) for r in rows], columns=["question_id", "category"])
    after = pd.DataFrame([(r[0], r[5]) for r in rows], columns=["question_id", "category"])
    pairs = row(controlled_table(questions, before, after, "x"), "All", "pairs")
    counts = [pairs[c] for c in ("reclassified", "linked_reclassified", "control", "linked_control")]
    assert counts == [10, 8, 4, 0]
    # Wilson 95% for 8/10 is [0.4902, 0.9433]; for 0/4 [0, 0.4899].
    assert pairs["linked_ci_low"] == pytest.approx(0.4902, abs=1e-4)
    assert pairs["linked_ci_high"] == pytest.approx(0.9433, abs=1e-4)
    assert pairs["control_ci_low"] == pytest.approx(0.0, abs=1e-12)
    assert pairs["control_ci_high"] == pytest.approx(0.4899, abs=1e-4)
    # 2x2 [[8, 2], [0, 4]]: margins 10, 4 and 8, 6 of 14, C(14, 8) = 3003; P(a) = C(10,a) C(4,8-a) / 3003
    # = 210, 1008, 1260, 480, 45 / 3003 for a = 4..8. Only the observed a = 8 is as unlikely as itself,
    # so the two-sided p-value is 45 / 3003 = 0.014985.
    assert pairs["p_value"] == pytest.approx(45 / 3003)
    assert pairs["p_value"] == pytest.approx(fisher_exact([[8, 2], [0, 4]]).pvalue)
    # no linked control pair: the conditional odds ratio is infinite, its lower bound above 1
    assert math.isinf(pairs["odds_ratio"]) and math.isinf(pairs["odds_ratio_ci_high"])
    low, _ = odds_ratio([[8, 2], [0, 4]], kind="conditional").confidence_interval(0.95)
    assert pairs["odds_ratio_ci_low"] == pytest.approx(low) and low > 1


def test_controlled_table_nodes_exclude_only_the_groups_own_edges():
    # Initial "France" -> "Paris". r1 "Lyon" -> "France" and r2 "Paul Bocuse" -> "Lyon" are reclassified:
    # pairs: r1 distance 0, r2 distance 1 (lyon reaches france through r1, another pair) -> 2 of 2.
    # nodes {lyon, france, paul bocuse}: france in I; lyon only through r1, a reclassified edge -> 1 of 3.
    # If r1 is a control pair instead, lyon counts for the reclassified nodes: r1 is not their edge.
    def run(r1_after):
        questions = pd.DataFrame(
            {
                "question_id": ["i", "r1", "r2"],
                "relation": ["P36", "P17", "P19"],
                "question": ["i", "r1", "r2"],
                "answers": [["Paris"], ["France"], ["Lyon"]],
                "subject": ["France", "Lyon", "Paul Bocuse"],
            }
        )
        before = pd.DataFrame({"question_id": ["i", "r1", "r2"], "category": [M, U, W]})
        after = pd.DataFrame({"question_id": ["i", "r1", "r2"], "category": [H, r1_after, M]})
        table = controlled_table(questions, before, after, "x")
        return row(table, "All", "pairs"), row(table, "All", "nodes")

    pairs, nodes = run(M)
    assert (pairs["reclassified"], pairs["linked_reclassified"]) == (2, 2)
    assert (nodes["reclassified"], nodes["linked_reclassified"]) == (3, 1)
    pairs, nodes = run(WU)
    assert (pairs["reclassified"], pairs["linked_reclassified"], pairs["control"]) == (1, 1, 1)
    # reclassified r2 nodes {paul bocuse, lyon}: lyon next to france through r1 (control) -> 1 of 2;
    # control r1 nodes {lyon, france}: france only -> 1 of 2
    assert (nodes["reclassified"], nodes["linked_reclassified"]) == (2, 1)
    assert (nodes["control"], nodes["linked_control"]) == (2, 1)


def test_graph_tables_edges_and_nodes():
    edges, nodes = graph_tables(QUESTIONS, {"base": BASE, "stage1": STAGE1, "stage2-s1": STAGE2})
    assert list(edges.columns) == [
        "question_id",
        "relation",
        "subject",
        "answer",
        "category_base",
        "category_stage1",
        "category_stage2-s1",
    ]
    assert len(edges) == 13 and QID["b0"] not in set(edges["question_id"])
    assert edges["relation"].tolist() == ["P17"] * 5 + ["P19"] * 4 + ["P36"] * 3 + ["P50"]
    a2 = edges.set_index("question_id").loc[QID["a2"]]
    assert a2.tolist() == ["P17", "nice", "france", W, WU, M]  # categories as given, not merged
    assert pd.isna(edges.set_index("question_id").loc[QID["b2"], "category_stage2-s1"])

    assert nodes["entity"].tolist() == sorted(nodes["entity"]) and len(nodes) == 18
    assert list(nodes.columns) == [
        "entity",
        "degree",
        "n_pairs",
        "n_as_subject",
        "n_as_answer",
        "maybe_known_base",
        "maybe_known_stage1",
        "maybe_known_stage2-s1",
    ]
    by_entity = nodes.set_index("entity")
    # france: answer of a1, a2, a3, subject of c1; MaybeKnown: c1 in base, a1 in stage 1, a2 in stage 2
    assert by_entity.loc["france"].tolist() == [4, 4, 1, 3, 1, 1, 1]
    # paris: answer of c1 and of b4 ("paris "); c1 MaybeKnown in base only
    assert by_entity.loc["paris"].tolist() == [2, 2, 0, 2, 1, 0, 0]
    # luxembourg: one self-loop pair, degree 2 as networkx counts it
    assert by_entity.loc["luxembourg"].tolist() == [2, 1, 1, 1, 0, 0, 0]
    assert "| entity" in nodes.to_markdown(index=False)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown categories"):
        controlled_table(QUESTIONS, BASE.assign(category="Known"), STAGE1, "x")
    with pytest.raises(ValueError, match="duplicate question ids"):
        controlled_table(QUESTIONS, pd.concat([BASE, BASE]), STAGE1, "x")
    with pytest.raises(ValueError, match="no column"):
        controlled_table(QUESTIONS.drop(columns="subject"), BASE, STAGE1, "x")
    with pytest.raises(ValueError, match="first gold answer"):
        entity_pairs(QUESTIONS.assign(answers=[[" "]] * len(QUESTIONS)))


def test_controlled_table_with_no_pairs_gives_nan_not_errors():
    questions = QUESTIONS[QUESTIONS["subject"].isna()]
    table = controlled_table(questions, BASE, STAGE1, "x")
    assert table["relation"].tolist() == ["All", "All", "P19", "P19"]  # no pair takes part: one origin row
    pairs = row(table, "All", "pairs")
    assert (pairs["without_subject"], pairs["reclassified"], pairs["control"]) == (1, 0, 0)
    assert math.isnan(pairs["linked_fraction"]) and math.isnan(pairs["p_value"])


# The paper's Table 5: (question_id, relation, subject, answer, untuned, after stage 1).
PAPER_ROWS = [
    ("i1", "P36", "France", "Paris", M, H),  # Initial
    ("i2", "P17", "Lyon", "France", M, M),  # Initial
    ("r1", "P17", "Nice", "France", W, M),  # Reclassified: nice next to france
    ("r2", "P19", "Victor Hugo", "Besançon", W, M),  # Reclassified, not linked
    ("r3", "P50", "Les Misérables", "Victor Hugo", W, M),  # Reclassified, not linked
    ("r4", "P19", "Emile Zola", "Paris", W, M),  # Reclassified: emile zola next to paris
    ("r5", "P26", "Pierre Curie", "Marie Curie", W, M),  # Reclassified, not linked in the paper's graph
    ("u1", "P17", "Bonn", "Germany", U, M),  # Unknown -> MaybeKnown: not in the paper's graph
    ("u2", "P19", "Marie Curie", "Paris", U, M),  # would link marie curie to paris: not in the graph
    ("h1", "P17", "Munich", "Germany", H, H),
    ("w1", "P17", "Marseille", "France", W, WU),  # WeaklyKnown that stayed
    ("b0", "P19", None, "Ulm", W, M),  # no subject
]


def paper_inputs():
    questions = pd.DataFrame(
        [(q, rel, f"question {q}", [answer], subject) for q, rel, subject, answer, _, _ in PAPER_ROWS],
        columns=["question_id", "relation", "question", "answers", "subject"],
    )
    untuned = pd.DataFrame([(r[0], r[4]) for r in PAPER_ROWS], columns=["question_id", "category"])
    stage1 = pd.DataFrame([(r[0], r[5]) for r in PAPER_ROWS], columns=["question_id", "category"])
    return questions, untuned, stage1


def test_paper_table5_counts_the_nodes_of_the_initial_and_weakly_known_reclassified_pairs_only():
    table = paper_table5(*paper_inputs())
    assert list(table.columns) == PAPER_TABLE5_COLUMNS
    assert table["relation"].tolist() == ["All", "P17", "P19", "P26", "P36", "P50"]
    every = table.iloc[0].to_dict()
    # Initial nodes france, paris, lyon; reclassified nodes (r1-r5) nice, france, victor hugo, besancon,
    # les miserables, emile zola, paris, pierre curie, marie curie. Joined by an edge to an Initial node:
    # nice (r1), france (i1, i2), emile zola (r4), paris (i1) -> 4 of 9. marie curie is next to paris only
    # through u2, an Unknown -> MaybeKnown pair, which is not in the paper's graph.
    assert [every[c] for c in ("without_subject", "initial_pairs", "reclassified_pairs")] == [1, 2, 5]
    assert [every[c] for c in ("initial", "reclassified", "linked_reclassified")] == [3, 9, 4]
    assert every["linked_fraction"] == pytest.approx(4 / 9)
    by_relation = table.set_index("relation")
    # P17: the graph of i2 and r1 only: nice and france both joined to Initial nodes.
    assert by_relation.loc["P17", ["initial", "reclassified", "linked_reclassified"]].tolist() == [2, 2, 2]
    # P19: r2 and r4, no Initial pair of P19 (paris is Initial through i1, a P36 pair) -> 0 of 4.
    assert by_relation.loc["P19", ["without_subject", "reclassified", "linked_reclassified"]].tolist() == [1, 4, 0]
    assert by_relation.loc["P26", ["reclassified", "linked_reclassified"]].tolist() == [2, 0]
    assert by_relation.loc["P36", ["initial", "reclassified", "linked_reclassified"]].tolist() == [2, 0, 0]
    assert math.isnan(by_relation.loc["P36", "linked_fraction"])


def test_paper_table5_needs_the_untuned_categories_with_samples():
    questions, untuned, stage1 = paper_inputs()
    merged = untuned.assign(category=untuned["category"].replace({W: WU, U: WU}))
    with pytest.raises(ValueError, match="WeaklyKnown apart from Unknown"):
        paper_table5(questions, merged, stage1)
