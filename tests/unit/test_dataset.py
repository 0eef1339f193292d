import json

import pandas as pd
import pytest

from gradual import SAMPLE_DATASET, dataset
from gradual.errors import InputError

TEMPLATES = {"P1": "Where was [X] born?", "P2": "What is the capital of [X]?"}


def write_eq(root, records, templates=TEMPLATES):
    """records: {(split, relation): [(question, answers), ...]}"""
    for (split, relation), rows in records.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        data = [{"question": q, "answers": a} for q, a in rows]
        (folder / f"{relation}.{split}.json").write_text(json.dumps(data))
    if templates is not None:
        (root / dataset.TEMPLATES_FILE).write_text(json.dumps(templates))
    return root


def born(names, answers=None):
    return [(f"Where was {n} born?", answers or [f"{n}ville"]) for n in names]


@pytest.fixture
def eq_dir(tmp_path):
    return write_eq(
        tmp_path / "eq",
        {
            ("train", "P1"): born(["Ann", "Bob", "Cy", "Di"]) + [("Where was Eve born?", ["Paris", "Lyon"])],
            ("train", "P2"): [("What is the capital of France?", ["Paris"]), ("What is the capital of Peru?", ["Lima"])],
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
    splits = dataset.prepare(frame, templates)
    train = splits["train"]
    assert list(train.columns) == dataset.QUESTION_COLUMNS
    # Eve has two answers: dropped from train (single_answer_train), kept in dev/test style splits
    assert train["question_id"].tolist() == [
        "P1.train.0", "P1.train.1", "P1.train.2", "P1.train.3", "P2.train.0", "P2.train.1"
    ]
    assert train["subject"].tolist() == ["Ann", "Bob", "Cy", "Di", "France", "Peru"]
    assert list(splits["dev"]["answers"].iloc[0]) == ["Rome", "Roma"]
    kept = dataset.prepare(frame, templates, single_answer_train=False)["train"]
    assert "P1.train.4" in kept["question_id"].tolist()


def test_prepare_relations_and_unknown_relation(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    splits = dataset.prepare(frame, templates, relations=["P2"])
    assert set(splits["test"]["relation"]) == {"P2"}
    with pytest.raises(InputError, match=r"unknown relation\(s\) \['P99'\]; the dataset has \['P1', 'P2'\]"):
        dataset.prepare(frame, templates, relations=["P2", "P99"])


def test_prepare_subsample_is_seeded_and_per_relation(eq_dir):
    frame, templates = dataset.read_entityquestions(eq_dir)
    first = dataset.prepare(frame, templates, per_relation={"train": 2}, seed=3)["train"]
    again = dataset.prepare(frame, templates, per_relation={"train": 2}, seed=3)["train"]
    assert first["question_id"].tolist() == again["question_id"].tolist()
    assert first["relation"].value_counts().to_dict() == {"P1": 2, "P2": 2}
    draws = {tuple(dataset.prepare(frame, templates, per_relation={"train": 2}, seed=s)["train"]["question_id"])
             for s in range(10)}
    assert len(draws) > 1
    # a relation's draw does not depend on which other relations are kept
    alone = dataset.prepare(frame, templates, relations=["P1"], per_relation={"train": 2}, seed=3)["train"]
    assert alone["question_id"].tolist() == first[first["relation"] == "P1"]["question_id"].tolist()


def test_dedupe_drops_repeats_after_normalisation(tmp_path):
    root = write_eq(
        tmp_path,
        {
            ("train", "P1"): [("Where was Zoë born?", ["A"]), ("where was  Zoe born?", ["B"]), ("Where was Al born?", ["C"])],
            ("dev", "P1"): born(["Bo"]),
            ("test", "P1"): born(["Cy"]),
        },
    )
    frame, templates = dataset.read_entityquestions(root)
    assert len(dataset.prepare(frame, templates)["train"]) == 2
    assert len(dataset.prepare(frame, templates, dedupe=False)["train"]) == 3


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
        ("[{\"question\": \"x\"", "not valid JSON"),
        ('{"question": "x"}', "expected a JSON list"),
        ('[{"answers": ["a"]}]', "record 0 has no 'question'"),
        ('[{"question": "Where was X born?"}]', "record 0 \\('Where was X born\\?'\\) has no 'answers'"),
        ('[{"question": "q", "answers": ["a"]}, {"question": "q2", "answers": []}]', "record 1 \\('q2'\\) has an empty answer list"),
        ('[{"question": "q", "answers": ["a", ""]}]', "empty or non-text answer"),
        ('[1]', "record 0 is not an object"),
    ],
)
def test_malformed_files_name_the_file_and_record(tmp_path, content, message):
    root = write_eq(tmp_path, {("train", "P1"): born(["A"]), ("dev", "P1"): born(["B"]), ("test", "P1"): born(["C"])})
    bad = root / "dev" / "P1.dev.json"
    bad.write_text(content)
    with pytest.raises(InputError, match=message) as error:
        dataset.read_entityquestions(root)
    assert str(bad) in str(error.value)


def test_missing_directory_and_split(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        dataset.read_entityquestions(tmp_path / "nowhere")
    write_eq(tmp_path, {("train", "P1"): born(["A"]), ("dev", "P1"): born(["B"])})
    with pytest.raises(InputError, match=r"test: no \*\.test\.json files"):
        dataset.read_entityquestions(tmp_path)


ROWS = [
    {"question": "Where was Ann born?", "answers": ["Oslo"], "relation": "P1"},
    {"question": "Where was Bob born?", "answers": ["Rome", "Roma"], "relation": "P1"},
]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_read_tables(tmp_path, suffix):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"train{suffix}"
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
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
    with pytest.raises(InputError, match=r"missing column\(s\) \['relation'\]"):
        dataset.read_tables({"train": path})
    with pytest.raises(InputError, match="file not found"):
        dataset.read_tables({"train": tmp_path / "none.jsonl"})
    with pytest.raises(InputError, match="unsupported file type '.txt'"):
        (tmp_path / "x.txt").write_text("")
        dataset.read_tables({"train": tmp_path / "x.txt"})
    path.write_text(json.dumps({"question": "q", "answers": [], "relation": "P1"}) + "\n")
    with pytest.raises(InputError, match="record 0 \\('q'\\) has an empty answer list"):
        dataset.read_tables({"train": path})


def test_sample_dataset_is_well_formed():
    frame, templates = dataset.read_entityquestions(SAMPLE_DATASET)
    splits = dataset.prepare(frame, templates, min_train_per_relation=5)
    assert frame["relation"].nunique() >= 8
    assert len(frame) >= 300
    for split, questions in splits.items():
        assert questions["subject"].notna().all(), split
        assert questions["question_id"].is_unique


def test_a_split_left_empty_by_the_filters_is_still_there(tmp_path):
    root = write_eq(
        tmp_path,
        {("train", "P1"): born(["A", "B"]), ("train", "P2"): [("What is the capital of Chad?", ["N'Djamena"])],
         ("dev", "P1"): born(["C"]), ("test", "P1"): born(["D"])},
    )
    frame, templates = dataset.read_entityquestions(root)
    splits = dataset.prepare(frame, templates, relations=["P2"], per_relation={"dev": 2})
    assert len(splits["train"]) == 1
    assert splits["dev"].empty and list(splits["dev"].columns) == dataset.QUESTION_COLUMNS
