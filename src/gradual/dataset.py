"""QA datasets in, one clean table per split out.

Readers accept an EntityQuestions-style directory or flat JSONL/JSON/CSV/Parquet files. Every
problem with the input is an InputError that says where it is: `file:LINE: problem` for a
record of a JSONL or CSV file (LINE is where the record starts, 1-based), `file:LINE: record N:
problem` for the N-th element of a JSON list, `file: row N: problem` for Parquet, and
`file: problem` for the file as a whole.
"""

import csv
import functools
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gradual.config import DEFAULTS
from gradual.errors import InputError
from gradual.matching import normalize
from gradual.seeding import stable_seed

SPLITS = ("train", "dev", "test")
TEMPLATES_FILE = "relation_query_templates.json"
SUBJECT_PLACEHOLDER = "[X]"
QUESTION_COLUMNS = ["question_id", "split", "relation", "question", "answers", "subject"]
TABLE_COLUMNS = ("question", "answers", "relation")
EXAMPLES_LOGGED = 3

# Every character str.splitlines() splits on: the prompt has one line per question and per
# answer, so any of them inside a question or an answer would corrupt it.
LINE_BREAK = re.compile("[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_JSON_WHITESPACE = re.compile(r"[ \t\n\r]*")

logger = logging.getLogger(__name__)


def relation_sort_key(relation: str) -> tuple:
    """P17 before P106: Wikidata ids in numeric order, anything else after them by name."""
    match = re.fullmatch(r"P(\d+)", relation)
    return (0, int(match.group(1)), "") if match else (1, 0, relation)


def _read_text(path: Path) -> str:
    """The file as text; a UTF-8 BOM (as Excel and Notepad write it) is dropped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as error:
        raise InputError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - line_start + 1
        raise InputError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at column {column}); save it as UTF-8"
        ) from None


def _parse_json(text: str, path: Path, first_line: int = 1) -> object:
    """`text` parsed; a syntax error names the line of the file it is on."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        line = first_line + error.lineno - 1
        raise InputError(f"{path}:{line}: not valid JSON ({error.msg} at column {error.colno})") from None


def _json_list(path: Path) -> tuple[list, Callable[[int], str]]:
    """The elements of a JSON list file and where each is: `file:LINE: record N`.

    Lines are found only when an error needs one: the walk over the list costs more than the parse.
    """
    text = _read_text(path)
    records = _parse_json(text, path)
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    return records, lambda index: f"{path}:{_json_element_line(text, index)}: record {index + 1}"


def _json_element_line(text: str, index: int) -> int:
    """The 1-based line on which element `index` of the (valid) JSON list in `text` starts."""
    decoder = json.JSONDecoder()
    position = _JSON_WHITESPACE.match(text, _JSON_WHITESPACE.match(text).end() + 1).end()  # past '['
    for _ in range(index):
        position = decoder.raw_decode(text, position)[1]
        position = _JSON_WHITESPACE.match(text, position).end() + 1  # past ','
        position = _JSON_WHITESPACE.match(text, position).end()
    return text.count("\n", 0, position) + 1


def _jsonl(path: Path) -> tuple[list, Callable[[int], str]]:
    """One JSON object per line; blank lines are skipped."""
    records, lines = [], []
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        if line.strip():
            records.append(_parse_json(line, path, first_line=number))
            lines.append(number)
    return records, lambda index: f"{path}:{lines[index]}"


def _csv(path: Path) -> tuple[list, Callable[[int], str]]:
    """Rows as records (header on line 1); `answers` holds a JSON list or one answer."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""), strict=True)
    records, lines, start = [], [], 1
    try:
        header = [name.strip() for name in next(reader, [])]
        _require_columns(header, path)
        start = reader.line_num + 1
        for row in reader:
            if row:
                if len(row) != len(header):
                    raise InputError(f"{path}:{start}: {len(row)} fields where the header has {len(header)}")
                record = dict(zip(header, row))
                record["answers"] = _csv_answers(record["answers"], f"{path}:{start}")
                records.append(record)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as error:
        raise InputError(f"{path}:{start}: not valid CSV ({error})") from None
    return records, lambda index: f"{path}:{lines[index]}"


def _csv_answers(cell: str, where: str) -> object:
    """A CSV cell holds a JSON list (["Paris", "Paris, France"]) or a single answer."""
    if not cell.lstrip().startswith("["):
        return cell
    try:
        return json.loads(cell)
    except json.JSONDecodeError as error:
        raise InputError(f"{where}: malformed answers list {cell!r} ({error.msg} at column {error.colno})") from None


def _parquet(path: Path) -> tuple[list, Callable[[int], str]]:
    try:
        frame = pd.read_parquet(path)
    except Exception as error:  # pyarrow has several error types for a bad file
        raise InputError(f"{path}: cannot be read as Parquet ({error})") from None
    _require_columns(frame.columns, path)
    return frame[list(TABLE_COLUMNS)].to_dict("records"), lambda index: f"{path}: row {index + 1}"


def _require_columns(columns: Iterable[str], path: Path) -> None:
    missing = sorted(set(TABLE_COLUMNS) - set(columns))
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")


TABLE_READERS = {".jsonl": _jsonl, ".json": _json_list, ".csv": _csv, ".parquet": _parquet}


class _BadRecord(Exception):
    """What is wrong with one record; the reader adds where it is."""


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _one_line(text: str, field: str) -> str:
    """`text` stripped; a line break inside it would let it spill into the next line of the prompt."""
    text = text.strip()
    if LINE_BREAK.search(text):
        raise _BadRecord(
            f"{field} contains a line break ({_excerpt(text)}); questions and answers must be one line each"
        )
    return text


def _clean_record(record: object, with_relation: bool) -> dict:
    if not isinstance(record, dict):
        raise _BadRecord(f"not a JSON object (got {type(record).__name__})")
    question, answers = record.get("question"), record.get("answers")
    if not isinstance(question, str) or not question.strip():
        raise _BadRecord("no 'question' (a non-empty string)")
    question = _one_line(question, "question")
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, (list, tuple, np.ndarray)):
        raise _BadRecord(f"no 'answers' list for question {question!r}")
    if len(answers) == 0:
        raise _BadRecord(f"empty answer list for question {question!r}")
    clean_answers = []
    for answer in answers:
        if not isinstance(answer, str) or not answer.strip():
            raise _BadRecord(f"empty or non-text answer in {list(answers)!r} for question {question!r}")
        clean_answers.append(_one_line(answer, "answer"))
    clean = {"question": question, "answers": clean_answers}
    if with_relation:
        relation = record.get("relation")
        if not isinstance(relation, str) or not relation.strip():
            raise _BadRecord(f"no 'relation' (a non-empty string) for question {question!r}")
        clean["relation"] = relation.strip()
    return clean


def _validated_records(records: list, locate: Callable[[int], str], with_relation: bool) -> list[dict]:
    """Every record checked and cleaned by one set of rules, whatever the file format."""
    clean = []
    for index, record in enumerate(records):
        try:
            clean.append(_clean_record(record, with_relation))
        except _BadRecord as problem:
            raise InputError(f"{locate(index)}: {problem}") from None
    return clean


def _split_frame(records: list[dict], split: str, relation: str | None = None) -> pd.DataFrame:
    frame = pd.DataFrame(records, columns=["relation", "question", "answers"])
    if relation is not None:
        frame["relation"] = relation
    frame.insert(0, "split", split)
    frame["source_index"] = range(len(frame))
    return frame


def read_templates(path: str | Path) -> dict[str, str]:
    """Relation id -> question template with [X] where the subject goes (gives each question its subject)."""
    path = Path(path)
    templates = _parse_json(_read_text(path), path)
    if not isinstance(templates, dict) or not all(isinstance(v, str) for v in templates.values()):
        raise InputError(f"{path}: expected an object mapping relation id to question template")
    bad = [r for r, t in templates.items() if SUBJECT_PLACEHOLDER not in t]
    if bad:
        raise InputError(f"{path}: templates of {bad} have no {SUBJECT_PLACEHOLDER} placeholder")
    return templates


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
            records = _validated_records(*_json_list(path), with_relation=False)
            frames.append(_split_frame(records, split, relation=path.name.split(".")[0]))
    return pd.concat(frames, ignore_index=True), templates


def read_tables(files: Mapping[str, str | Path]) -> pd.DataFrame:
    """Flat files with question, answers (list) and relation columns, one file per split."""
    frames = []
    for split, path in files.items():
        path = Path(path)
        reader = TABLE_READERS.get(path.suffix.lower())
        if reader is None:
            raise InputError(f"{path}: unsupported file type {path.suffix!r} (use {', '.join(TABLE_READERS)})")
        if not path.is_file():
            raise InputError(f"{path}: file not found")
        frames.append(_split_frame(_validated_records(*reader(path), with_relation=True), split))
    return pd.concat(frames, ignore_index=True)


@functools.cache
def _template_pattern(template: str) -> re.Pattern:
    return re.compile(re.escape(template).replace(re.escape(SUBJECT_PLACEHOLDER), "(.+)"))


def subject_of(question: str, template: str | None) -> str | None:
    """The entity that fills [X] in the relation's template, or None where the question does not fit it."""
    if template is None:
        return None
    match = _template_pattern(template).fullmatch(question)
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


@dataclass(frozen=True)
class PreparedDataset:
    """The question table of each split, and the counts that explain how it was drawn from the input."""

    splits: dict[str, pd.DataFrame]
    summary: dict


def _examples(items: list[str]) -> str:
    return "; ".join(items[:EXAMPLES_LOGGED])


def _with_keys(questions: pd.DataFrame) -> pd.DataFrame:
    """`questions` with their normalised text as `key`, the identity of repeats and overlaps.

    Computed only where needed and only once: normalising is the slow part of preparing a dataset.
    """
    if "key" in questions:
        return questions
    return questions.assign(key=[normalize(q) for q in questions["question"].tolist()])


def _drop_repeats(questions: pd.DataFrame, split: str) -> tuple[pd.DataFrame, dict]:
    """The first question of each (relation, normalised text), and counts of the repeats dropped.

    A repeat whose answers differ from the kept question's is worth a warning: the data disagree
    with themselves, and only the kept question's answers are used.
    """
    repeated = questions.duplicated(["relation", "key"])
    kept, repeats = questions[~repeated], questions[repeated]
    first = dict(
        zip(
            zip(kept["relation"].tolist(), kept["key"].tolist()),
            zip(kept["question_id"].tolist(), kept["answers"].tolist()),
        )
    )
    conflicts = []
    for relation, key, question_id, question, answers in zip(
        *(repeats[column].tolist() for column in ("relation", "key", "question_id", "question", "answers"))
    ):
        kept_id, kept_answers = first[(relation, key)]
        if {normalize(a) for a in answers} != {normalize(a) for a in kept_answers}:
            conflicts.append(f"{question_id} {question!r} {list(answers)} vs kept {kept_id} {list(kept_answers)}")
    logger.info(
        "%s: dropped %d repeated question(s) (same normalised text within a relation; the first is kept)",
        split,
        int(repeated.sum()),
    )
    if conflicts:
        logger.warning(
            "%s: %d dropped repeat(s) have answers that differ from the kept question's, e.g. %s",
            split,
            len(conflicts),
            _examples(conflicts),
        )
    return kept, {"dropped_duplicates": int(repeated.sum()), "duplicates_with_conflicting_answers": len(conflicts)}


def _subsample(questions: pd.DataFrame, limit: int | None, split: str, seed: int) -> pd.DataFrame:
    """At most `limit` questions per relation, seeded per (split, relation) so a relation's draw
    does not depend on which other relations are kept."""
    if limit is None or questions.empty:
        return questions
    return pd.concat(
        group.sample(n=min(limit, len(group)), random_state=stable_seed(seed, split, relation))
        for relation, group in questions.groupby("relation")
    )


def _count_overlap_with_train(splits: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Per held-out split, how many questions also appear in train (same relation and normalised text).

    Only reported: a question the model was tuned on inflates held-out accuracy, but the data are as given.
    """
    if "train" not in splits or len(splits) == 1:
        return {}
    splits = {split: _with_keys(questions) for split, questions in splits.items()}
    train = splits["train"].drop_duplicates(["relation", "key"])
    train_ids = dict(zip(zip(train["relation"].tolist(), train["key"].tolist()), train["question_id"].tolist()))
    overlap = {}
    for split, questions in splits.items():
        if split == "train":
            continue
        columns = (questions[c].tolist() for c in ("question_id", "question", "relation", "key"))
        hits = [
            f"{question_id} {question!r} = {train_ids[(relation, key)]}"
            for question_id, question, relation, key in zip(*columns)
            if (relation, key) in train_ids
        ]
        if hits:
            logger.warning(
                "%s: %d of %d questions also appear in train (same relation and normalised text; kept), e.g. %s",
                split,
                len(hits),
                len(questions),
                _examples(hits),
            )
        overlap[split] = len(hits)
    return overlap


def _prepare_split(
    questions: pd.DataFrame,
    split: str,
    relation_order: Mapping[str, int],
    templates: Mapping[str, str],
    single_answer: bool,
    dedupe: bool,
    limit: int | None,
    seed: int,
) -> tuple[pd.DataFrame, dict]:
    """One split's questions after each filter in turn, and how many each filter dropped."""
    count = {"read": len(questions)}
    questions = questions[questions["relation"].isin(relation_order)]
    count["dropped_other_relations"] = count["read"] - len(questions)
    multi_answer = (questions["answers"].map(len) > 1) & single_answer
    count["dropped_multi_answer"] = int(multi_answer.sum())
    questions = questions[~multi_answer]
    question_ids = questions["relation"] + f".{split}." + questions["source_index"].astype(str)
    questions = questions.assign(question_id=question_ids)
    if dedupe:
        questions, repeats = _drop_repeats(_with_keys(questions), split)
    else:
        repeats = {"dropped_duplicates": 0, "duplicates_with_conflicting_answers": 0}
    count.update(repeats)
    before = len(questions)
    questions = _subsample(questions, limit, split, seed)
    count["dropped_by_subsample"] = before - len(questions)
    questions = questions.assign(order=questions["relation"].map(relation_order)).sort_values(["order", "source_index"])
    relations_and_questions = zip(questions["relation"].tolist(), questions["question"].tolist())
    questions = questions.assign(subject=[subject_of(q, templates.get(r)) for r, q in relations_and_questions])
    count["kept"] = len(questions)
    count["without_subject"] = int(questions["subject"].isna().sum())
    return questions, count


def prepare(
    frame: pd.DataFrame,
    templates: Mapping[str, str],
    relations: Iterable[str] | str = DEFAULTS["dataset"]["relations"],
    per_relation: Mapping[str, int | None] = DEFAULTS["dataset"]["per_relation"],
    single_answer_train: bool = DEFAULTS["dataset"]["single_answer_train"],
    dedupe: bool = DEFAULTS["dataset"]["dedupe"],
    seed: int = DEFAULTS["dataset"]["seed"],
    min_train_per_relation: int = 1,
) -> PreparedDataset:
    """The questions of each split after filtering, with a stable id and the subject entity, and a summary.

    The id `relation.split.index` points at the record's place in its source file, so it stays
    the same whatever subset is drawn. The summary counts, per split, the questions read, dropped
    (other relations, multi-answer train questions, repeats, the subsample) and kept, and how many
    kept ones have no subject or also appear in train.
    """
    keep = select_relations(frame, relations)
    relation_order = {relation: position for position, relation in enumerate(keep)}
    splits, counts = {}, {}
    for split in pd.unique(frame["split"]):
        splits[split], counts[split] = _prepare_split(
            frame[frame["split"] == split],
            split,
            relation_order,
            templates,
            single_answer=single_answer_train and split == "train",
            dedupe=dedupe,
            limit=per_relation.get(split),
            seed=seed,
        )
    for split, overlap in _count_overlap_with_train(splits).items():
        counts[split]["also_in_train"] = overlap
    splits = {split: questions[QUESTION_COLUMNS].reset_index(drop=True) for split, questions in splits.items()}
    train_counts = splits.get("train", pd.DataFrame(columns=["relation"]))["relation"].value_counts()
    short = {r: int(train_counts.get(r, 0)) for r in keep if train_counts.get(r, 0) < min_train_per_relation}
    if short:
        raise InputError(
            f"relation(s) with fewer than {min_train_per_relation} train questions (k_shot + 1 are needed "
            f"to draw exemplars that are never the question itself): {short}"
        )
    return PreparedDataset(splits=splits, summary={"relations": keep, "splits": counts})
