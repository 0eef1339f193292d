"""QA datasets in, one clean table per split out.

Readers accept an EntityQuestions-style directory or flat JSONL/CSV/Parquet files; every
problem with the input is an InputError that names the file and record.
"""

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from gradual.errors import InputError
from gradual.matching import normalize
from gradual.seeding import stable_seed

SPLITS = ("train", "dev", "test")
TEMPLATES_FILE = "relation_query_templates.json"
SUBJECT_PLACEHOLDER = "[X]"
QUESTION_COLUMNS = ["question_id", "split", "relation", "question", "answers", "subject"]


def relation_sort_key(relation: str) -> tuple:
    """P17 before P106: Wikidata ids in numeric order, anything else after them by name."""
    match = re.fullmatch(r"P(\d+)", relation)
    return (0, int(match.group(1)), "") if match else (1, 0, relation)


def _validated_records(records: object, source: str) -> list[dict]:
    if not isinstance(records, list):
        raise InputError(f"{source}: expected a JSON list of records, got {type(records).__name__}")
    clean = []
    for index, record in enumerate(records):
        where = f"{source}: record {index}"
        if not isinstance(record, Mapping):
            raise InputError(f"{where} is not an object")
        question, answers = record.get("question"), record.get("answers")
        if not isinstance(question, str) or not question.strip():
            raise InputError(f"{where} has no 'question' (a non-empty string)")
        if isinstance(answers, str):
            answers = [answers]
        if not isinstance(answers, Iterable) or isinstance(answers, Mapping):
            raise InputError(f"{where} ({question!r}) has no 'answers' list")
        answers = list(answers)
        if not answers:
            raise InputError(f"{where} ({question!r}) has an empty answer list")
        if not all(isinstance(a, str) and a.strip() for a in answers):
            raise InputError(f"{where} ({question!r}) has an empty or non-text answer: {answers!r}")
        clean.append({"question": question.strip(), "answers": [a.strip() for a in answers]})
    return clean


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not valid JSON ({error})") from None


def find_entityquestions_root(directory: str | Path) -> Path:
    """The folder that holds train/dev/test: the directory itself or one level below (as in the official zip)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"dataset directory {directory} does not exist")
    candidates = [directory, *sorted(p for p in directory.iterdir() if p.is_dir())]
    for candidate in candidates:
        if (candidate / "train").is_dir():
            return candidate
    raise InputError(f"{directory}: no train/ folder here or one level below (EntityQuestions layout)")


def read_templates(path: str | Path) -> dict[str, str]:
    templates = _read_json(Path(path))
    if not isinstance(templates, dict) or not all(isinstance(v, str) for v in templates.values()):
        raise InputError(f"{path}: expected an object mapping relation id to question template")
    bad = [r for r, t in templates.items() if SUBJECT_PLACEHOLDER not in t]
    if bad:
        raise InputError(f"{path}: templates of {bad} have no {SUBJECT_PLACEHOLDER} placeholder")
    return templates


def read_entityquestions(directory: str | Path, splits: Iterable[str] = SPLITS) -> tuple[pd.DataFrame, dict]:
    """All records of `{split}/P*.{split}.json` under `directory`, and the relation templates."""
    root = find_entityquestions_root(directory)
    templates_path = next((p / TEMPLATES_FILE for p in (root, Path(directory)) if (p / TEMPLATES_FILE).is_file()), None)
    templates = read_templates(templates_path) if templates_path else {}
    frames = []
    for split in splits:
        files = sorted((root / split).glob(f"*.{split}.json"), key=lambda p: relation_sort_key(p.name.split(".")[0]))
        if not files:
            raise InputError(f"{root / split}: no *.{split}.json files")
        for path in files:
            records = _validated_records(_read_json(path), str(path))
            frame = pd.DataFrame(records)
            frame.insert(0, "relation", path.name.split(".")[0])
            frame.insert(0, "split", split)
            frame["source_index"] = range(len(frame))
            frames.append(frame)
    return pd.concat(frames, ignore_index=True), templates


def _read_table_file(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        if suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
        elif suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            raise InputError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .csv or .parquet)")
    except InputError:
        raise
    except Exception as error:  # every reader has its own parse error type
        raise InputError(f"{path}: cannot be read ({error})") from None
    missing = {"question", "answers", "relation"} - set(frame.columns)
    if missing:
        raise InputError(f"{path}: missing column(s) {sorted(missing)}")
    if suffix == ".csv":
        frame["answers"] = [_csv_answers(value, path, i) for i, value in enumerate(frame["answers"])]
    return frame


def _csv_answers(value: str, path: Path, index: int) -> list[str]:
    """A CSV cell holds a JSON list (["Paris", "Paris, France"]) or a single answer."""
    if value.lstrip().startswith("["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise InputError(f"{path}: record {index} has a malformed answers list {value!r}") from None
    return [value]


def read_tables(files: Mapping[str, str | Path]) -> pd.DataFrame:
    """Flat files with question, answers (list) and relation columns, one file per split."""
    frames = []
    for split, path in files.items():
        path = Path(path)
        table = _read_table_file(path)
        records = _validated_records(table[["question", "answers"]].to_dict("records"), str(path))
        relations = table["relation"].astype(str).str.strip()
        if (relations == "").any():
            raise InputError(f"{path}: record {int((relations == '').idxmax())} has an empty relation")
        frame = pd.DataFrame(records)
        frame.insert(0, "relation", relations.to_numpy())
        frame.insert(0, "split", split)
        frame["source_index"] = range(len(frame))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def subject_of(question: str, template: str | None) -> str | None:
    """The entity that fills [X] in the relation's template, or None where the question does not fit it."""
    if template is None:
        return None
    pattern = "^" + re.escape(template).replace(re.escape(SUBJECT_PLACEHOLDER), "(.+)") + "$"
    match = re.match(pattern, question)
    return match.group(1).strip() if match else None


def select_relations(frame: pd.DataFrame, relations: Iterable[str] | str) -> list[str]:
    """The relations to keep, in a stable order; unknown names are an error that lists the known ones."""
    known = sorted(frame["relation"].unique(), key=relation_sort_key)
    if relations == "all":
        return known
    wanted = list(relations)
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise InputError(f"dataset.relations: unknown relation(s) {unknown}; the dataset has {known}")
    return sorted(set(wanted), key=relation_sort_key)


def prepare(
    frame: pd.DataFrame,
    templates: Mapping[str, str],
    relations: Iterable[str] | str = "all",
    per_relation: Mapping[str, int | None] | None = None,
    single_answer_train: bool = True,
    dedupe: bool = True,
    seed: int = 0,
    min_train_per_relation: int = 1,
) -> dict[str, pd.DataFrame]:
    """The questions of each split after filtering, with a stable id and the subject entity.

    The id `relation.split.index` points at the record's place in its source file, so it stays
    the same whatever subset is drawn.
    """
    keep = select_relations(frame, relations)
    splits = pd.unique(frame["split"])
    frame = frame[frame["relation"].isin(keep)]
    if single_answer_train:
        frame = frame[(frame["split"] != "train") | (frame["answers"].map(len) == 1)]
    if dedupe:
        key = frame["question"].map(normalize)
        frame = frame[~pd.DataFrame({"s": frame["split"], "r": frame["relation"], "q": key}).duplicated()]
    per_relation = per_relation or {}
    result = {}
    for split in splits:
        questions = frame[frame["split"] == split]
        limit = per_relation.get(split)
        if limit is not None and len(questions):
            questions = pd.concat(
                group.sample(n=min(limit, len(group)), random_state=stable_seed(seed, split, relation))
                for relation, group in questions.groupby("relation")
            )
        order = questions["relation"].map(relation_sort_key)
        questions = questions.assign(order=order).sort_values(["order", "source_index"])
        questions = questions.assign(
            question_id=questions["relation"] + "." + split + "." + questions["source_index"].astype(str),
            subject=[subject_of(q, templates.get(r)) for q, r in zip(questions["question"], questions["relation"])],
        )
        result[split] = questions[QUESTION_COLUMNS].reset_index(drop=True)
    train_counts = result.get("train", pd.DataFrame(columns=["relation"]))["relation"].value_counts()
    short = {r: int(train_counts.get(r, 0)) for r in keep if train_counts.get(r, 0) < min_train_per_relation}
    if short:
        raise InputError(
            f"relation(s) with fewer than {min_train_per_relation} train questions (k_shot + 1 are needed "
            f"to draw exemplars that are never the question itself): {short}"
        )
    return result
