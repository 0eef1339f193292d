import json
import logging
import runpy
from pathlib import Path

import pandas as pd
import pytest

from gradual import SAMPLE_DATASET, dataset
from gradual.errors import InputError
from gradual.shared import write_manifest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = {"P1": "Where was [X] born?", "P2": "What is the capital of [X]?"}
# What str.splitlines() splits on; none may appear inside a question or an answer.
LINE_BREAKS = ["\n", "\r", "\r\n", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def write_eq(root, records, templates=TEMPLATES):
    """records: {(split, relation): [(question, answers), ...]}, written as the real files are (indent 4)."""
    for (split, relation), rows in records.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        data = [{"question": q, "answers": a} for q, a in rows]
        (folder / f"{relation}.{split}.json").write_text(json.dumps(data, indent=4))
    if templates is not None:
        (root / dataset.TEMPLATES_FILE).write_text(json.dumps(templates))
    return root


def born(names, answers=None):
    return [(f"Where was {n} born?", answers or [f"{n}ville"]) for n in names]


def one_of_each_split(tmp_path):
    return write_eq(tmp_path, {("train", "P1"): born(["A"]), ("dev", "P1"): born(["B"]), ("test", "P1"): born(["C"])})


def error_of(call, *args) -> str:
    with pytest.raises(InputError) as error:
        call(*args)
    return str(error.value)


def table_error(path) -> str:
    """The message of reading `path` as the train file of dataset.source: files."""
    return error_of(dataset.read_tables, {"train": path})


@pytest.fixture
def eq_dir(tmp_path):
    return write_eq(
        tmp_path / "eq",
        {
            ("train", "P1"): born(["Ann", "Bob", "Cy", "Di"]) + [("Where was Eve born?", ["Paris", "Lyon"])],
            ("train", "P2"): [
                ("What is the capital of France?", ["Paris"]),
                ("What is the capital of Peru?", ["Lima"]),
            ],
            ("dev", "P1"): born(["Fay"], ["Rome", "Roma"]),
            ("dev", "P2"): [("What is the capital of Chad?", ["N'Djamena"])],
            ("test", "P1"): born(["Gus"]),
            ("test", "P2"): [("What is the capital of Mali?", ["Bamako"])],
        },
    )


def test_read_entityquestions(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    assert templates == TEMPLATES
    assert len(frame) == 11
    train_p1 = frame[(frame["split"] == "train") & (frame["relation"] == "P1")]
    assert train_p1["source_index"].tolist() == [0, 1, 2, 3, 4]
    assert train_p1["answers"].iloc[4] == ["Paris", "Lyon"]


def test_official_zip_layout_one_level_down(tmp_path, eq_dir):
    eq_dir.rename(tmp_path / "dataset")
    (tmp_path / "outer").mkdir()
    (tmp_path / "dataset").rename(tmp_path / "outer" / "dataset")
    assert dataset.find_entityquestions_root(tmp_path / "outer") == tmp_path / "outer" / "dataset"


def test_prepare_ids_subjects_single_answer(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    splits = dataset.prepare(frame, templates).splits
    train = splits["train"]
    assert list(train.columns) == dataset.QUESTION_COLUMNS
    # Eve has two answers: dropped from train (single_answer_train), kept in dev/test style splits
    assert train["question_id"].tolist() == [
        "P1.train.0",
        "P1.train.1",
        "P1.train.2",
        "P1.train.3",
        "P2.train.0",
        "P2.train.1",
    ]
    assert train["subject"].tolist() == ["Ann", "Bob", "Cy", "Di", "France", "Peru"]
    assert list(splits["dev"]["answers"].iloc[0]) == ["Rome", "Roma"]
    kept = dataset.prepare(frame, templates, single_answer_train=False).splits["train"]
    assert "P1.train.4" in kept["question_id"].tolist()


def test_prepare_summary_counts_every_filter(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    summary = dataset.prepare(frame, templates, relations=["P1"], per_relation={"train": 3}).summary
    empty = {"dropped_duplicates": 0, "duplicates_with_conflicting_answers": 0, "without_subject": 0}
    assert summary == {
        "relations": ["P1"],
        "splits": {
            "train": {
                "read": 7,
                "dropped_other_relations": 2,
                "dropped_multi_answer": 1,
                **empty,
                "dropped_by_subsample": 1,
                "kept": 3,
            },
            "dev": {
                "read": 2,
                "dropped_other_relations": 1,
                "dropped_multi_answer": 0,
                **empty,
                "dropped_by_subsample": 0,
                "kept": 1,
                "also_in_train": 0,
            },
            "test": {
                "read": 2,
                "dropped_other_relations": 1,
                "dropped_multi_answer": 0,
                **empty,
                "dropped_by_subsample": 0,
                "kept": 1,
                "also_in_train": 0,
            },
        },
    }
    json.dumps(summary)  # the workflow writes it as JSON


def test_summary_counts_questions_without_subject(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    summary = dataset.prepare(frame, {"P1": "Where did [X] die?"}).summary
    assert [summary["splits"][s]["without_subject"] for s in dataset.SPLITS] == [6, 2, 2]


def test_prepare_relations_and_unknown_relation(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    splits = dataset.prepare(frame, templates, relations=["P2"]).splits
    assert set(splits["test"]["relation"]) == {"P2"}
    with pytest.raises(InputError, match=r"unknown relation\(s\) \['P99'\]; the dataset has \['P1', 'P2'\]"):
        dataset.prepare(frame, templates, relations=["P2", "P99"])


def test_prepare_subsample_is_seeded_and_per_relation(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)

    def train_ids(**settings):
        return dataset.prepare(frame, templates, per_relation={"train": 2}, **settings).splits["train"]["question_id"]

    first = dataset.prepare(frame, templates, per_relation={"train": 2}, seed=3).splits["train"]
    assert first["question_id"].tolist() == train_ids(seed=3).tolist()
    assert first["relation"].value_counts().to_dict() == {"P1": 2, "P2": 2}
    assert len({tuple(train_ids(seed=s)) for s in range(10)}) > 1
    # a relation's draw does not depend on which other relations are kept
    alone = train_ids(relations=["P1"], seed=3)
    assert alone.tolist() == first[first["relation"] == "P1"]["question_id"].tolist()


def test_dedupe_drops_repeats_after_normalisation(tmp_path):
    root = write_eq(
        tmp_path,
        {
            ("train", "P1"): [
                ("Where was Zoë born?", ["A"]),
                ("where was  Zoe born?", ["B"]),
                ("Where was Al born?", ["C"]),
            ],
            ("dev", "P1"): born(["Bo"]),
            ("test", "P1"): born(["Cy"]),
        },
    )
    frame, templates = dataset.read_entityquestions(root)
    assert dataset.prepare(frame, templates).splits["train"]["question_id"].tolist() == ["P1.train.0", "P1.train.2"]
    assert len(dataset.prepare(frame, templates, dedupe=False).splits["train"]) == 3


def test_dedupe_logs_repeats_and_warns_about_conflicting_answers(tmp_path, caplog):
    names = ["Ann", "Bob", "Cy", "Di", "Eve"]
    root = write_eq(
        tmp_path,
        {
            # five repeats with other answers, one with the same answers up to case: 6 dropped, 5 conflicting
            ("train", "P1"): born(names, ["Oslo"]) + born(names, ["Rome"]) + [("Where was ann born?", ["OSLO"])],
            ("dev", "P1"): born(["Fay", "fay"]),
            ("test", "P1"): born(["Gus"]),
        },
    )
    frame, templates = dataset.read_entityquestions(root)
    with caplog.at_level(logging.INFO, logger="gradual.dataset"):
        summary = dataset.prepare(frame, templates).summary
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (
        logging.INFO,
        "train: dropped 6 repeated question(s) (same normalised text within a relation; the first is kept)",
    ) in messages
    assert (
        logging.INFO,
        "dev: dropped 1 repeated question(s) (same normalised text within a relation; the first is kept)",
    ) in messages
    assert (
        logging.WARNING,
        "train: 5 dropped repeat(s) have answers that differ from the kept question's, e.g. "
        "P1.train.5 'Where was Ann born?' ['Rome'] vs kept P1.train.0 ['Oslo']; "
        "P1.train.6 'Where was Bob born?' ['Rome'] vs kept P1.train.1 ['Oslo']; "
        "P1.train.7 'Where was Cy born?' ['Rome'] vs kept P1.train.2 ['Oslo']",
    ) in messages
    # 'fayville' and 'Fayville' (the dev repeat's answers) normalise alike: no conflict
    assert not [m for level, m in messages if level == logging.WARNING and m.startswith("dev")]
    assert summary["splits"]["train"]["dropped_duplicates"] == 6
    assert summary["splits"]["train"]["duplicates_with_conflicting_answers"] == 5
    assert summary["splits"]["dev"]["dropped_duplicates"] == 1
    assert summary["splits"]["dev"]["duplicates_with_conflicting_answers"] == 0


def test_overlap_with_train_is_reported_not_dropped(tmp_path, caplog):
    root = write_eq(
        tmp_path,
        {
            ("train", "P1"): born(["Ann", "Bob", "Cy", "Di"]),
            ("train", "P2"): [("What is the capital of Ann?", ["X"])],
            # in train: Ann, bob (case), Cy, Di; not in train: Eve; P2's question has another relation
            ("dev", "P1"): born(["Eve", "Ann", "bob", "Cy", "Di"]) + [("What is the capital of Ann?", ["X"])],
            ("test", "P1"): born(["Fay"]),
        },
    )
    frame, templates = dataset.read_entityquestions(root)
    with caplog.at_level(logging.INFO, logger="gradual.dataset"):
        prepared = dataset.prepare(frame, templates)
    assert len(prepared.splits["dev"]) == 6
    assert prepared.summary["splits"]["dev"]["also_in_train"] == 4
    assert prepared.summary["splits"]["test"]["also_in_train"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "dev: 4 of 6 questions also appear in train (same relation and normalised text; kept), e.g. "
        "P1.dev.1 'Where was Ann born?' = P1.train.0; P1.dev.2 'Where was bob born?' = P1.train.1; "
        "P1.dev.3 'Where was Cy born?' = P1.train.2"
    ]
    # counted on what the run uses: only the subsampled dev questions that are in train
    in_train = {"Where was Ann born?", "Where was bob born?", "Where was Cy born?", "Where was Di born?"}
    for seed in range(5):
        subsampled = dataset.prepare(frame, templates, per_relation={"dev": 2}, seed=seed)
        expected = len(set(subsampled.splits["dev"]["question"]) & in_train)
        assert subsampled.summary["splits"]["dev"]["also_in_train"] == expected


def test_too_few_train_questions_for_exemplars(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    with pytest.raises(InputError, match=r"fewer than 3 train questions.*: \{.P2.: 2\}$"):
        dataset.prepare(frame, templates, min_train_per_relation=3)


def test_question_not_fitting_its_template_has_no_subject():
    assert dataset.subject_of("Where was Ann born?", "Where was [X] born?") == "Ann"
    assert dataset.subject_of("Who is Ann's child?", "Who is [X]'s child?") == "Ann"
    assert dataset.subject_of("Where is Ann?", "Where was [X] born?") is None
    assert dataset.subject_of("Where is Ann?", None) is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"question": "x"', ":1: not valid JSON (Expecting ',' delimiter at column 18)"),
        ('{"question": "x"}', ": expected a JSON list of records, got dict"),
        ('[{"answers": ["a"]}]', ":1: record 1: no 'question' (a non-empty string)"),
        ('[{"question": "Where was X born?"}]', ":1: record 1: no 'answers' list for question 'Where was X born?'"),
        (
            '[{"question": "q", "answers": ["a"]}, {"question": "q2", "answers": []}]',
            ":1: record 2: empty answer list for question 'q2'",
        ),
        (
            '[{"question": "q", "answers": ["a", ""]}]',
            ":1: record 1: empty or non-text answer in ['a', ''] for question 'q'",
        ),
        (
            '[{"question": "q", "answers": ["a", 7]}]',
            ":1: record 1: empty or non-text answer in ['a', 7] for question 'q'",
        ),
        ("[1]", ":1: record 1: not a JSON object (got int)"),
    ],
)
def test_malformed_files_name_the_file_and_record(tmp_path, content, message):
    root = one_of_each_split(tmp_path)
    bad = root / "dev" / "P1.dev.json"
    bad.write_text(content)
    assert error_of(dataset.read_entityquestions, root) == f"{bad}{message}"


def test_json_list_errors_name_the_record_and_the_line_it_starts_on(tmp_path):
    root = one_of_each_split(tmp_path)
    bad = root / "train" / "P1.train.json"
    bad.write_text(
        json.dumps(
            [
                {"question": "q1", "answers": ["a"]},
                {"question": "q2", "answers": ["a"]},
                {"question": "q3", "answers": []},
            ],
            indent=4,
        )
    )
    # indent 4: "[" on line 1, then 6 lines per record
    assert error_of(dataset.read_entityquestions, root) == f"{bad}:14: record 3: empty answer list for question 'q3'"
    bad.write_text(
        '[\n  {"question": "q1", "answers": ["a"]},\n  {"question": "q2", "answers": ["a"]}\n  {"question": "q3"}\n]'
    )
    assert error_of(dataset.read_entityquestions, root) == (
        f"{bad}:4: not valid JSON (Expecting ',' delimiter at column 3)"
    )


def test_jsonl_errors_name_the_line(tmp_path):
    path = tmp_path / "train.jsonl"
    good = json.dumps({"question": "q1", "answers": ["a"], "relation": "P1"})
    path.write_text(f"{good}\n\n{good}\n" + json.dumps({"question": "q3", "answers": [], "relation": "P1"}) + "\n")
    assert table_error(path) == f"{path}:4: empty answer list for question 'q3'"
    path.write_text(f'{good}\n{{"question": "q2" "answers": ["a"]}}\n')
    assert table_error(path) == f"{path}:2: not valid JSON (Expecting ',' delimiter at column 19)"
    path.write_text(f"{good}\n[1, 2]\n")
    assert table_error(path) == f"{path}:2: not a JSON object (got list)"


def test_csv_errors_name_the_line_where_the_record_starts(tmp_path):
    path = tmp_path / "train.csv"
    header = "question,answers,relation\n"
    spanning = 'q1,"[""a"",\n""b""]",P1\n'  # one record over lines 2-3
    path.write_text(header + spanning + "q2,,P1\n")
    assert table_error(path) == f"{path}:4: empty or non-text answer in [''] for question 'q2'"
    path.write_text(header + spanning + 'q2,"[""a""",P1\n')
    assert table_error(path) == (f"""{path}:4: malformed answers list '["a"' (Expecting ',' delimiter at column 5)""")
    path.write_text(header + spanning + "q2,a,P1,extra\n")
    assert table_error(path) == f"{path}:4: 4 fields where the header has 3"
    path.write_text(header + spanning + '"q2"x,a,P1\n')
    assert table_error(path) == f"""{path}:4: not valid CSV (',' expected after '"')"""
    path.write_text(header + spanning + '"q2,a,P1\n')
    assert table_error(path) == f"{path}:4: not valid CSV (unexpected end of data)"
    path.write_text("question,answers\nq1,a\n")
    assert table_error(path) == f"{path}: missing column(s) ['relation']"


def test_parquet_errors_name_the_row(tmp_path):
    path = tmp_path / "train.parquet"
    pd.DataFrame({"question": ["q1", "q2"], "answers": [["a"], []], "relation": ["P1", "P1"]}).to_parquet(path)
    assert table_error(path) == f"{path}: row 2: empty answer list for question 'q2'"
    path.write_text("not parquet")
    assert table_error(path).startswith(f"{path}: cannot be read as Parquet (")


LATIN1_LINES = ["question,answers,relation", "q1,a,P1", "Caf\xe9,a,P1"]  # \xe9 is 'é' in latin-1


@pytest.mark.parametrize(
    ("name", "lines", "column"),
    [
        (
            "train.jsonl",
            [
                '{"question": "q1", "answers": ["a"], "relation": "P1"}',
                '{"question": "Caf\xe9", "answers": ["a"], "relation": "P1"}',
            ],
            18,
        ),
        ("train.csv", LATIN1_LINES, 4),
        (
            "train.json",
            [
                "[",
                '{"question": "q1", "answers": ["a"], "relation": "P1"},',
                '{"question": "Caf\xe9", "answers": ["a"], "relation": "P1"}',
                "]",
            ],
            18,
        ),
    ],
)
def test_text_that_is_not_utf8_names_the_line(tmp_path, name, lines, column):
    path = tmp_path / name
    path.write_bytes("\n".join(lines).encode("latin-1"))
    line = next(i for i, text in enumerate(lines, start=1) if "\xe9" in text)
    assert table_error(path) == (f"{path}:{line}: not UTF-8 text (byte 0xe9 at column {column}); save it as UTF-8")


def test_eq_file_that_is_not_utf8_names_the_line(tmp_path):
    root = one_of_each_split(tmp_path)
    bad = root / "test" / "P1.test.json"
    bad.write_bytes('[\n{"question": "Caf\xe9", "answers": ["a"]}\n]'.encode("latin-1"))
    assert error_of(dataset.read_entityquestions, root) == (
        f"{bad}:2: not UTF-8 text (byte 0xe9 at column 18); save it as UTF-8"
    )


BOM = "\ufeff"


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv"])
def test_utf8_bom_is_accepted_in_tables(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    record = {"question": "Where was Ann born?", "answers": ["Oslo"], "relation": "P1"}
    text = {
        ".jsonl": json.dumps(record) + "\n",
        ".json": json.dumps([record], indent=4),
        ".csv": "question,answers,relation\nWhere was Ann born?,Oslo,P1\n",
    }[suffix]
    path.write_text(BOM + text, encoding="utf-8")
    table = dataset.read_tables({"train": path})
    assert table[["question", "relation"]].to_dict("records") == [{"question": "Where was Ann born?", "relation": "P1"}]


def test_utf8_bom_is_accepted_in_eq_files_and_templates(tmp_path):
    root = one_of_each_split(tmp_path)
    for path in [root / dataset.TEMPLATES_FILE, root / "train" / "P1.train.json"]:
        path.write_text(BOM + path.read_text(), encoding="utf-8")
    frame, templates = dataset.read_entityquestions(root)
    assert templates == TEMPLATES
    assert len(frame) == 3


def test_line_break_pattern_is_exactly_what_splitlines_splits_on():
    splits = {chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1}
    assert {chr(c) for c in range(0x110000) if dataset.LINE_BREAK.search(chr(c))} == splits
    assert splits == {c for c in LINE_BREAKS if len(c) == 1}


@pytest.mark.parametrize("line_break", LINE_BREAKS)
def test_a_line_break_inside_a_question_or_answer_is_refused(tmp_path, line_break):
    path = tmp_path / "train.jsonl"
    good = json.dumps({"question": "Who wrote War and Peace?", "answers": ["Leo Tolstoy"], "relation": "P50"})
    injected = f"Who?{line_break}A: Berlin{line_break}{line_break}Q: Where?"
    path.write_text(f"{good}\n" + json.dumps({"question": injected, "answers": ["x"], "relation": "P50"}) + "\n")
    assert table_error(path) == (
        f"{path}:2: question contains a line break ({injected!r}); questions and answers must be one line each"
    )
    answer = json.dumps(
        {"question": "Who wrote War and Peace?", "answers": ["Leo", f"Leo{line_break}Tolstoy"], "relation": "P50"}
    )
    path.write_text(f"{good}\n{good}\n{answer}\n")
    assert table_error(path) == (
        f"{path}:3: answer contains a line break ({'Leo' + line_break + 'Tolstoy'!r}); "
        "questions and answers must be one line each"
    )


def test_a_long_text_with_a_line_break_is_shortened_in_the_message(tmp_path):
    root = one_of_each_split(tmp_path)
    bad = root / "train" / "P1.train.json"
    bad.write_text(json.dumps([{"question": "Where was " + "A" * 50 + "\nborn?", "answers": ["x"]}], indent=4))
    assert error_of(dataset.read_entityquestions, root) == (
        f"{bad}:2: record 1: question contains a line break ('Where was {'A' * 30}...'); "
        "questions and answers must be one line each"
    )


def test_tabs_and_surrounding_whitespace_are_allowed(tmp_path):
    path = tmp_path / "train.jsonl"
    record = {"question": "  Where was\tAnn born?\n", "answers": [" Oslo\t"], "relation": " P1 "}
    path.write_text(json.dumps(record) + "\n")
    table = dataset.read_tables({"train": path})
    assert table[["question", "answers", "relation"]].to_dict("records") == [
        {"question": "Where was\tAnn born?", "answers": ["Oslo"], "relation": "P1"}
    ]


def test_missing_directory_and_split(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        dataset.read_entityquestions(tmp_path / "nowhere")
    write_eq(tmp_path, {("train", "P1"): born(["A"]), ("dev", "P1"): born(["B"])})
    with pytest.raises(InputError, match=r"test: no \*\.test\.json files"):
        dataset.read_entityquestions(tmp_path)


def test_template_errors(tmp_path):
    path = tmp_path / "templates.json"
    path.write_text('{\n  "P1": "Where was [X] born?",\n  "P2": "x"\n  "P3": "y"\n}')
    assert error_of(dataset.read_templates, path) == f"{path}:4: not valid JSON (Expecting ',' delimiter at column 3)"
    path.write_text('{"P1": "Where was he born?"}')
    assert error_of(dataset.read_templates, path) == f"{path}: templates of ['P1'] have no [X] placeholder"


ROWS = [
    {"question": "Where was Ann born?", "answers": ["Oslo"], "relation": "P1"},
    {"question": "Where was Bob born?", "answers": ["Rome", "Roma"], "relation": "P1"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_read_tables(tmp_path, suffix):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"train{suffix}"
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        frame.to_json(path, orient="records", indent=2)
    elif suffix == ".csv":
        frame.assign(answers=[json.dumps(a) for a in frame["answers"]]).to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    table = dataset.read_tables({"train": path})
    assert table["question"].tolist() == ["Where was Ann born?", "Where was Bob born?"]
    assert [list(a) for a in table["answers"]] == [["Oslo"], ["Rome", "Roma"]]
    assert table["relation"].tolist() == ["P1", "P1"]
    assert table["split"].tolist() == ["train", "train"]


def test_csv_single_answer_cell(tmp_path):
    path = tmp_path / "dev.csv"
    path.write_text("question,answers,relation\nWhere was Ann born?,Oslo,P1\n")
    assert dataset.read_tables({"dev": path})["answers"].tolist() == [["Oslo"]]


def test_table_errors(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps({"question": "q", "answers": ["a"]}) + "\n")
    assert table_error(path) == f"{path}:1: no 'relation' (a non-empty string) for question 'q'"
    assert table_error(tmp_path / "none.jsonl") == f"{tmp_path}/none.jsonl: file not found"
    (tmp_path / "x.txt").write_text("")
    assert table_error(tmp_path / "x.txt") == (
        f"{tmp_path / 'x.txt'}: unsupported file type '.txt' (use .jsonl, .json, .csv, .parquet)"
    )
    path.write_text(json.dumps({"question": "q", "answers": [], "relation": "P1"}) + "\n")
    assert table_error(path) == f"{path}:1: empty answer list for question 'q'"


def test_sample_dataset_is_well_formed():
    frame, templates = dataset.read_entityquestions(SAMPLE_DATASET)
    prepared = dataset.prepare(frame, templates, min_train_per_relation=5)
    assert frame["relation"].nunique() >= 8
    assert len(frame) >= 300
    for split, questions in prepared.splits.items():
        assert questions["subject"].notna().all(), split
        assert questions["question_id"].is_unique
        assert prepared.summary["splits"][split]["kept"] == len(questions)


def test_a_split_left_empty_by_the_filters_is_still_there(tmp_path):
    root = write_eq(
        tmp_path,
        {
            ("train", "P1"): born(["A", "B"]),
            ("train", "P2"): [("What is the capital of Chad?", ["N'Djamena"])],
            ("dev", "P1"): born(["C"]),
            ("test", "P1"): born(["D"]),
        },
    )
    frame, templates = dataset.read_entityquestions(root)
    prepared = dataset.prepare(frame, templates, relations=["P2"], per_relation={"dev": 2})
    assert len(prepared.splits["train"]) == 1
    assert prepared.splits["dev"].empty and list(prepared.splits["dev"].columns) == dataset.QUESTION_COLUMNS
    assert prepared.summary["splits"]["dev"]["kept"] == 0


@pytest.fixture
def script_logging():
    """job_log points the root logger at the job's log file; the tests after it get theirs back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_prepare_script(tmp_path, inputs, source, **settings):
    """scripts/prepare_dataset.py as Snakemake runs it, with the rule's input, params and output."""
    iocontainers = pytest.importorskip("snakemake.iocontainers")

    def named(values):
        return iocontainers.Namedlist(fromdict={k: str(v) for k, v in values.items()})

    out = tmp_path / "out"
    config = {
        "source": source,
        "relations": "all",
        "per_relation": {},
        "single_answer_train": True,
        "dedupe": True,
        "seed": 0,
        **settings,
    }
    snakemake = type(
        "Snakemake",
        (),
        {
            "input": named(inputs),
            "output": named({**{s: out / f"{s}.parquet" for s in dataset.SPLITS}, "summary": out / "summary.json"}),
            "params": iocontainers.Namedlist(fromdict={"dataset": config, "min_train_per_relation": 1}),
            "log": [str(tmp_path / "prepare.log")],
        },
    )()
    runpy.run_path(str(ROOT / "scripts" / "prepare_dataset.py"), init_globals={"snakemake": snakemake})
    return out


def test_prepare_script_writes_splits_and_summary(script_logging, tmp_path, eq_dir):
    out = run_prepare_script(tmp_path, {"directory": eq_dir}, "directory", relations=["P1"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["relations"] == ["P1"]
    assert summary["splits"]["train"]["kept"] == 4
    assert pd.read_parquet(out / "train.parquet")["question_id"].tolist() == [f"P1.train.{i}" for i in range(4)]


def test_prepare_script_reads_a_download_through_its_manifest(script_logging, tmp_path, eq_dir):
    manifest = tmp_path / "entityquestions.json"
    write_manifest(manifest, {"url": "file:///dataset.zip"}, eq_dir)
    out = run_prepare_script(tmp_path, {"downloaded": manifest}, "download")
    assert json.loads((out / "summary.json").read_text())["splits"]["test"]["kept"] == 2


def test_prepare_script_with_files_and_optional_templates(script_logging, tmp_path):
    files = {}
    for split, name in zip(dataset.SPLITS, ["Ann", "Bob", "Cy"]):
        files[split] = tmp_path / f"{split}.jsonl"
        files[split].write_text(json.dumps({"question": f"Where was {name} born?", "answers": ["x"], "relation": "P1"}))
    (tmp_path / "templates.json").write_text(json.dumps(TEMPLATES))
    out = run_prepare_script(tmp_path, {**files, "templates": tmp_path / "templates.json"}, "files")
    assert pd.read_parquet(out / "dev.parquet")["subject"].tolist() == ["Bob"]
    out = run_prepare_script(tmp_path, files, "files")
    assert pd.read_parquet(out / "dev.parquet")["subject"].tolist() == [None]
    assert json.loads((out / "summary.json").read_text())["splits"]["dev"]["without_subject"] == 1


def test_prepare_script_error_is_one_line_and_writes_nothing(script_logging, tmp_path):
    files = {split: tmp_path / f"{split}.jsonl" for split in dataset.SPLITS}
    for path in files.values():
        path.write_text(json.dumps({"question": "q", "answers": [], "relation": "P1"}) + "\n")
    with pytest.raises(SystemExit):
        run_prepare_script(tmp_path, files, "files")
    assert (tmp_path / "prepare.log").read_text() == f"error: {files['train']}:1: empty answer list for question 'q'\n"
    assert not (tmp_path / "out").exists()
