"""The entity graph of the training pairs: the paper's Table 5, and a controlled analysis beside it.

The paper (Li et al., 2024, Table 5) builds a graph of two sets of pairs only: those MaybeKnown
for the untuned model (Initial) and those WeaklyKnown for it and MaybeKnown after stage 1
(Reclassified); the entities of a pair's question (its subject) and of its answer are nodes, the pair
an undirected edge. It counts nodes: Initial, Reclassified, and Linked Reclassified, the reclassified
nodes connected to Initial nodes (Qwen2-7B: 43,005 / 5,121 / 3,968). `paper_table5` computes exactly
that, reading "connected to" as "joined by an edge of that graph to an Initial node" (a node that is
Initial itself is joined to its own pair's other entity, so it counts): a path of any length would,
through hub answers such as a country, link nearly every node of a relation and measure nothing.

What it cannot say is how many pairs would be linked by chance: one hub answer such as "France"
links most pairs of a relation. `controlled_table` asks that of every train pair, for every
comparison "before -> after" (stage 1 over the untuned model, stage 2 over stage 1), against a
control group: the pairs of the same origin that stayed never right.

Shared definitions:

- Pair: a training question whose subject is known. Its subject entity is `normalize(subject)` and its
  answer entity `normalize(first gold answer)` (gradual.matching.normalize, the matcher's, so "Paris"
  and "paris " are one entity). A question whose subject is None (the relation template did not match)
  or normalises to "" is counted per relation as `without_subject` and left out of the graph and of
  every other count.
- Only the pairs with a category in both states take part. The state after is compared merged
  (WeaklyKnown and Unknown as WeaklyOrUnknown: re-detection after fine-tuning draws no samples).
- Per relation, a row is the same construction on that relation's pairs only (the paper's Table 5),
  or the All row's counts restricted to that relation's pairs (the controlled table).

The controlled table:

- Graph: an undirected networkx MultiGraph with one node per entity and one edge per pair of the
  train set (whatever its category), between its subject and answer, keyed by question_id (attribute
  `relation`). Parallel edges (two pairs on the same entities) and self-loops are kept.
- Initial entities I: the subject and answer entities of the pairs taking part that are MaybeKnown
  before (HighlyKnown pairs are not Initial, as in the paper). I is taken over all relations.
- Origin rows: the pairs never right before (WeaklyKnown, Unknown, or WeaklyOrUnknown where the state
  before was detected without samples) are grouped by that category, and all of them together
  (WeaklyOrUnknown). Reclassified pairs of an origin: MaybeKnown after; control pairs: never right
  after.
- Pair link distance: 0 when the pair's subject or answer is in I; 1 when neither is but one of them is
  joined to an entity of I by the edge of another pair (any pair of the graph, whatever its category);
  otherwise the pair is not linked. The pair's own edge is never evidence: it could join an endpoint
  to I only if the other endpoint were in I, and then the distance is 0.
- Node counts: the distinct entities of a group's pairs (reclassified or control of the row's origin;
  in a relation's row, of that relation's pairs). An entity is linked for a group when it is in I or is
  adjacent to I in the graph without the edges of the group's pairs (of all relations): the edge of a
  pair whose outcome is being measured is never evidence for that outcome.
- Statistics, on pairs only: the linked fraction of the reclassified and of the control pairs, each
  with a 95% Wilson interval; Fisher's exact two-sided test on [[reclassified linked, reclassified not
  linked], [control linked, control not linked]] and the conditional odds ratio with its 95% interval.
  Pairs that share a hub are not independent, so read the p-value as a guide, not as exact. Node rows
  give counts and fractions only (intervals and test NaN): an entity can belong to both groups and the
  two entities of a pair are not independent, so a test on entities has no sampling model. An empty
  group gives NaN fractions, intervals and test, not an error; when both groups have pairs but all or
  none are linked, the values are scipy's (p-value 1, odds ratio NaN with interval [0, inf]).
"""

import math
import re

import networkx as nx
import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats.contingency import odds_ratio
from statsmodels.stats.proportion import proportion_confint

from gradual.analysis import CONFIDENCE
from gradual.categories import (
    MAYBE_KNOWN,
    UNKNOWN,
    WEAKLY_KNOWN,
    WEAKLY_OR_UNKNOWN,
    category_lookup,
    merge_unknown,
    require_columns,
)
from gradual.dataset import relation_sort_key
from gradual.matching import normalize

ALL = "All"
PAIRS = "pairs"
NODES = "nodes"
INITIAL = "initial"
RECLASSIFIED = "reclassified"
CONTROL = "control"
PAIR_COLUMNS = ["question_id", "relation", "subject", "answer"]
COMPARISON_COLUMNS = [*PAIR_COLUMNS, "before", "after", "group", "distance"]
NEVER_RIGHT = (WEAKLY_KNOWN, UNKNOWN, WEAKLY_OR_UNKNOWN)
PAPER_TABLE5_COLUMNS = [
    "relation",
    "without_subject",
    "initial_pairs",
    "reclassified_pairs",
    "initial",
    "reclassified",
    "linked_reclassified",
    "linked_fraction",
]
CONTROLLED_COLUMNS = [
    "comparison",
    "origin",
    "relation",
    "unit",
    "without_subject",
    "initial",
    "reclassified",
    "linked_reclassified",
    "linked_fraction",
    "linked_ci_low",
    "linked_ci_high",
    "control",
    "linked_control",
    "control_fraction",
    "control_ci_low",
    "control_ci_high",
    "odds_ratio",
    "odds_ratio_ci_low",
    "odds_ratio_ci_high",
    "p_value",
]
_NO_TEST = {"odds_ratio": math.nan, "odds_ratio_ci_low": math.nan, "odds_ratio_ci_high": math.nan, "p_value": math.nan}
_DIGITS = re.compile(r"(\d+)")


def _questions(questions: pd.DataFrame) -> pd.DataFrame:
    require_columns(questions, ["question_id", "relation", "answers", "subject"], "questions table")
    if questions["question_id"].duplicated().any():
        raise ValueError("questions table has duplicate question ids")
    return questions


def _subject_entity(subject) -> str | None:
    """The normalised subject, or None where there is none: a missing subject is not an entity."""
    if subject is None or (not isinstance(subject, str) and pd.isna(subject)):
        return None
    return normalize(subject) or None


def _answer_entity(answers, question_id) -> str:
    """The normalised first gold answer, the canonical one; a question without one is broken data."""
    if isinstance(answers, str):
        answers = [answers]
    first = answers[0] if answers is not None and len(answers) else None
    entity = normalize(first) if isinstance(first, str) else ""
    if not entity:
        raise ValueError(f"question {question_id!r} has no non-empty first gold answer: {answers!r}")
    return entity


def _natural_key(text: str) -> tuple:
    """'P17.train.2' before 'P17.train.10': numbers inside ids compare as numbers."""
    return tuple(int(part) if part.isdigit() else part for part in _DIGITS.split(str(text)))


def _pair_order(pairs: pd.DataFrame) -> pd.DataFrame:
    relations, ids = pairs["relation"].tolist(), pairs["question_id"].tolist()
    keys = [(relation_sort_key(r), _natural_key(q)) for r, q in zip(relations, ids)]
    order = sorted(range(len(pairs)), key=keys.__getitem__)
    return pairs.iloc[order].reset_index(drop=True)


def entity_pairs(questions: pd.DataFrame) -> pd.DataFrame:
    """One row per question with a subject: question_id, relation, subject and answer entities (normalised).

    Sorted by relation (relation_sort_key), then question id; questions without a subject are left out.
    """
    questions = _questions(questions)
    subjects = [_subject_entity(s) for s in questions["subject"].tolist()]
    rows = [
        (question_id, relation, subject, _answer_entity(answers, question_id))
        for question_id, relation, subject, answers in zip(
            questions["question_id"].tolist(), questions["relation"].tolist(), subjects, questions["answers"].tolist()
        )
        if subject is not None
    ]
    return _pair_order(pd.DataFrame(rows, columns=PAIR_COLUMNS))


def without_subject(questions: pd.DataFrame) -> pd.Series:
    """Questions without a subject per relation (every relation of the table, 0 where none)."""
    questions = _questions(questions)
    missing = pd.Series([_subject_entity(s) is None for s in questions["subject"].tolist()], index=questions.index)
    return missing.groupby(questions["relation"]).sum().astype("int64")


def _graph_of(pairs: pd.DataFrame) -> nx.MultiGraph:
    graph = nx.MultiGraph()
    graph.add_nodes_from(sorted(set(pairs["subject"]) | set(pairs["answer"])))
    for question_id, relation, subject, answer in zip(*(pairs[c].tolist() for c in PAIR_COLUMNS)):
        graph.add_edge(subject, answer, key=question_id, relation=relation)
    return graph


def entity_graph(questions: pd.DataFrame) -> nx.MultiGraph:
    """The undirected entity graph: a node per normalised entity, an edge per pair keyed by question_id."""
    return _graph_of(entity_pairs(questions))


def _merged(table: pd.DataFrame, name: str) -> pd.Series:
    return merge_unknown(category_lookup(table, name)).astype(str)


def link_distances(graph: nx.MultiGraph, pairs: pd.DataFrame, initial: set[str]) -> pd.Series:
    """Per pair (index of `pairs`): 0 if an entity is in `initial`, 1 if one is a neighbour of it, else <NA>.

    A neighbour through the pair's own edge would need the other endpoint in `initial` (distance 0), so
    taking all neighbours of `initial` is the same as taking those joined by the edge of another pair.
    """
    adjacent = {neighbour for entity in initial if entity in graph for neighbour in graph.neighbors(entity)}
    distances = [
        0 if subject in initial or answer in initial else 1 if subject in adjacent or answer in adjacent else pd.NA
        for subject, answer in zip(pairs["subject"].tolist(), pairs["answer"].tolist())
    ]
    return pd.Series(distances, index=pairs.index, dtype="Int64", name="distance")


def linked_entities(graph: nx.MultiGraph, entities, initial: set[str], excluded: set) -> set[str]:
    """The entities in `initial` or joined to it by an edge whose key (question id) is not in `excluded`."""
    linked = set()
    for entity in entities:
        if entity in initial or any(
            other in initial and key not in excluded for _, other, key in graph.edges(entity, keys=True)
        ):
            linked.add(entity)
    return linked


def comparison_pairs(questions: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The pairs of a comparison with their categories, group and link distance.

    One row per pair with a subject and a category in both states: the PAIR_COLUMNS, before (as
    given), after (merged), group ("initial", "reclassified", "control" or None) and distance (0, 1 or
    <NA> when not linked; see the module docstring), in the order of entity_pairs.
    """
    all_pairs = entity_pairs(questions)
    return _comparison(all_pairs, _graph_of(all_pairs), before, after)


def _categorised(all_pairs: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The pairs with a category in both states: before as given, after merged."""
    categories = pd.DataFrame(
        {"before": category_lookup(before, "before category table"), "after": _merged(after, "after category table")}
    ).dropna()
    return all_pairs.join(categories, on="question_id", how="inner").reset_index(drop=True)


def _comparison(all_pairs: pd.DataFrame, graph: nx.MultiGraph, before: pd.DataFrame, after: pd.DataFrame):
    pairs = _categorised(all_pairs, before, after)
    pairs["group"] = [_group(b, a) for b, a in zip(pairs["before"].tolist(), pairs["after"].tolist())]
    initial = _entities(pairs[pairs["group"] == INITIAL])
    pairs["distance"] = link_distances(graph, pairs, initial)
    return pairs[COMPARISON_COLUMNS]


def _group(before: str, after: str) -> str | None:
    """Initial, reclassified, control, or None for a pair that is none of them (e.g. HighlyKnown before)."""
    if before == MAYBE_KNOWN:
        return INITIAL
    if before in NEVER_RIGHT:
        return {MAYBE_KNOWN: RECLASSIFIED, WEAKLY_OR_UNKNOWN: CONTROL}.get(after)
    return None


def _entities(pairs: pd.DataFrame) -> set[str]:
    return set(pairs["subject"]) | set(pairs["answer"])


def _fraction(count: int, n: int) -> tuple[float, float, float]:
    """count / n with its 95% Wilson interval; NaN for an empty group."""
    if n == 0:
        return math.nan, math.nan, math.nan
    low, high = proportion_confint(count, n, alpha=1 - CONFIDENCE, method="wilson")
    return count / n, float(low), float(high)


def _fisher(table: list[list[int]]) -> dict:
    """Fisher's exact two-sided p-value and the conditional odds ratio with its 95% interval (scipy's)."""
    if sum(table[0]) == 0 or sum(table[1]) == 0:
        return dict(_NO_TEST)
    result = odds_ratio(table, kind="conditional")
    low, high = result.confidence_interval(CONFIDENCE)
    return {
        "odds_ratio": float(result.statistic),
        "odds_ratio_ci_low": float(low),
        "odds_ratio_ci_high": float(high),
        "p_value": float(stats.fisher_exact(table, alternative="two-sided").pvalue),
    }


def _pair_row(pairs: pd.DataFrame) -> dict:
    reclassified = pairs[pairs["group"] == RECLASSIFIED]
    control = pairs[pairs["group"] == CONTROL]
    n_reclassified, n_control = len(reclassified), len(control)
    linked_reclassified = int(reclassified["distance"].notna().sum())
    linked_control = int(control["distance"].notna().sum())
    row = {
        "initial": int((pairs["group"] == INITIAL).sum()),
        **_group_columns(n_reclassified, linked_reclassified, n_control, linked_control),
    }
    table = [
        [linked_reclassified, n_reclassified - linked_reclassified],
        [linked_control, n_control - linked_control],
    ]
    return row | _fisher(table)


def _node_row(pairs: pd.DataFrame, linked: dict[str, set[str]]) -> dict:
    groups = {group: _entities(pairs[pairs["group"] == group]) for group in (INITIAL, RECLASSIFIED, CONTROL)}
    counts = {group: (len(groups[group]), len(groups[group] & linked[group])) for group in (RECLASSIFIED, CONTROL)}
    row = {"initial": len(groups[INITIAL]), **_group_columns(*counts[RECLASSIFIED], *counts[CONTROL])}
    for column in ("linked_ci_low", "linked_ci_high", "control_ci_low", "control_ci_high"):
        row[column] = math.nan
    return row | _NO_TEST


def _group_columns(n_reclassified: int, linked_reclassified: int, n_control: int, linked_control: int) -> dict:
    fraction, low, high = _fraction(linked_reclassified, n_reclassified)
    control_fraction, control_low, control_high = _fraction(linked_control, n_control)
    return {
        "reclassified": n_reclassified,
        "linked_reclassified": linked_reclassified,
        "linked_fraction": fraction,
        "linked_ci_low": low,
        "linked_ci_high": high,
        "control": n_control,
        "linked_control": linked_control,
        "control_fraction": control_fraction,
        "control_ci_low": control_low,
        "control_ci_high": control_high,
    }


def _origins(pairs: pd.DataFrame) -> list[str]:
    """The origin rows of a comparison: WeaklyKnown and Unknown apart where the state before was
    detected with samples, then every never-right pair together (WeaklyOrUnknown)."""
    sampled = pairs["before"].isin([WEAKLY_KNOWN, UNKNOWN]).any()
    return [WEAKLY_KNOWN, UNKNOWN, WEAKLY_OR_UNKNOWN] if sampled else [WEAKLY_OR_UNKNOWN]


def _of_origin(pairs: pd.DataFrame, origin: str) -> pd.Series:
    """The Initial pairs and the reclassified and control pairs of `origin`."""
    never_right = pairs["before"].isin(NEVER_RIGHT) if origin == WEAKLY_OR_UNKNOWN else pairs["before"] == origin
    return (pairs["group"] == INITIAL) | (never_right & pairs["group"].isin([RECLASSIFIED, CONTROL]))


def controlled_table(
    questions: pd.DataFrame, before: pd.DataFrame, after: pd.DataFrame, comparison: str
) -> pd.DataFrame:
    """The controlled entity-graph analysis of one comparison "before -> after" (e.g. base -> stage1).

    Rows: per origin (`_origins`), relation "All", then each relation of `questions`
    (relation_sort_key), each with unit "pairs" then "nodes"; columns CONTROLLED_COLUMNS. `before`
    and `after` are raw category tables (question_id, category). Definitions: the module docstring.
    """
    all_pairs = entity_pairs(questions)
    graph = _graph_of(all_pairs)
    pairs = _comparison(all_pairs, graph, before, after)
    initial = _entities(pairs[pairs["group"] == INITIAL])
    missing = without_subject(questions)
    relations = sorted(missing.index, key=relation_sort_key)
    rows = []
    for origin in _origins(pairs):
        members = pairs[_of_origin(pairs, origin)]
        linked = {
            group: linked_entities(graph, _entities(grouped), initial, set(grouped["question_id"]))
            for group in (RECLASSIFIED, CONTROL)
            for grouped in [members[members["group"] == group]]
        }
        for relation in [ALL, *relations]:
            subset = members if relation == ALL else members[members["relation"] == relation]
            head = {
                "comparison": comparison,
                "origin": origin,
                "relation": relation,
                "without_subject": int(missing.sum() if relation == ALL else missing[relation]),
            }
            rows.append(head | {"unit": PAIRS} | _pair_row(subset))
            rows.append(head | {"unit": NODES} | _node_row(subset, linked))
    return pd.DataFrame(rows, columns=CONTROLLED_COLUMNS)


def paper_table5(questions: pd.DataFrame, untuned: pd.DataFrame, stage1: pd.DataFrame) -> pd.DataFrame:
    """The paper's Table 5: node counts of the graph of the Initial pairs (MaybeKnown for the untuned
    model) and the Reclassified pairs (WeaklyKnown for it, MaybeKnown after stage 1) only.

    Rows: relation "All", then each relation (the same graph of that relation's pairs); columns
    PAPER_TABLE5_COLUMNS: the pairs of each set, the paper's node counts initial, reclassified and
    linked_reclassified (reclassified nodes joined by an edge to an Initial node), and their fraction.
    `untuned` must come from a detection that samples: the paper's reclassified pairs are WeaklyKnown,
    not Unknown.
    """
    pairs = _categorised(entity_pairs(questions), untuned, stage1)
    if (pairs["before"] == WEAKLY_OR_UNKNOWN).any():
        raise ValueError("the paper's Table 5 needs the untuned model's WeaklyKnown apart from Unknown (sampled)")
    initial = pairs[pairs["before"] == MAYBE_KNOWN]
    reclassified = pairs[(pairs["before"] == WEAKLY_KNOWN) & (pairs["after"] == MAYBE_KNOWN)]
    missing = without_subject(questions)
    rows = []
    for relation in [ALL, *sorted(missing.index, key=relation_sort_key)]:
        parts = [part if relation == ALL else part[part["relation"] == relation] for part in (initial, reclassified)]
        graph = _graph_of(pd.concat(parts, ignore_index=True))
        initial_nodes, reclassified_nodes = (_entities(part) for part in parts)
        linked = {node for node in reclassified_nodes if any(n in initial_nodes for n in graph.neighbors(node))}
        rows.append(
            {
                "relation": relation,
                "without_subject": int(missing.sum() if relation == ALL else missing[relation]),
                "initial_pairs": len(parts[0]),
                "reclassified_pairs": len(parts[1]),
                "initial": len(initial_nodes),
                "reclassified": len(reclassified_nodes),
                "linked_reclassified": len(linked),
                "linked_fraction": len(linked) / len(reclassified_nodes) if reclassified_nodes else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=PAPER_TABLE5_COLUMNS)


def graph_tables(questions: pd.DataFrame, categories: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The entity graph as an edge list and a node list, with the categories of each state, for networkx or Gephi.

    Edges: one row per pair with a subject, in entity_pairs order: question_id, relation, subject,
    answer, and category_<state> per state (its category as given, not merged; missing where the state
    has none). Nodes, sorted by entity: entity, degree (networkx's: a self-loop counts twice), n_pairs
    (pairs it is part of), n_as_subject, n_as_answer, and maybe_known_<state>: its pairs MaybeKnown there.
    """
    edges = entity_pairs(questions)
    for state, table in categories.items():
        known = category_lookup(table, f"category table of {state!r}")
        edges[f"category_{state}"] = edges["question_id"].map(known).astype(object)
    graph = _graph_of(edges)
    entities = sorted(graph.nodes)
    self_loop = edges["subject"] == edges["answer"]
    nodes = pd.DataFrame({"entity": entities, "degree": [graph.degree(e) for e in entities]})
    nodes["n_pairs"] = _per_entity(edges, self_loop, entities)
    nodes["n_as_subject"] = edges["subject"].value_counts().reindex(entities, fill_value=0).to_numpy()
    nodes["n_as_answer"] = edges["answer"].value_counts().reindex(entities, fill_value=0).to_numpy()
    for state in categories:
        maybe = (edges[f"category_{state}"] == MAYBE_KNOWN).to_numpy()
        nodes[f"maybe_known_{state}"] = _per_entity(edges[maybe], self_loop[maybe], entities)
    return edges, nodes.astype({c: "int64" for c in nodes.columns if c != "entity"})


def _per_entity(edges: pd.DataFrame, self_loop: pd.Series, entities: list[str]) -> np.ndarray:
    """Pairs per entity, a self-loop pair once."""
    ends = pd.concat([edges["subject"], edges["answer"][~self_loop.to_numpy()]])
    return ends.value_counts().reindex(entities, fill_value=0).to_numpy()
