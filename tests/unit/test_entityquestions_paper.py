"""The paper's training set from the real EntityQuestions files: configs/paper-qwen2-7b.yaml must give
its 169,164 train questions (Table 2 total), relation by relation."""

import json
from pathlib import Path

import pytest
import yaml

from gradual import dataset
from gradual.config import load_schema, with_defaults

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "entityquestions"
PAPER_TRAIN_QUESTIONS = 169_164
RELATIONS = 24


def paper_dataset_settings() -> dict:
    """The paper config's dataset section, with the schema's defaults for the keys it leaves out."""
    config = yaml.safe_load((ROOT / "configs" / "paper-qwen2-7b.yaml").read_text())
    return with_defaults(config, load_schema())["dataset"]


def single_answer_counts(train_dir: Path) -> dict[str, int]:
    """Per relation, the train records with exactly one answer, counted with plain json."""
    counts = {}
    for path in train_dir.glob("P*.train.json"):
        records = json.loads(path.read_text(encoding="utf-8"))
        counts[path.name.split(".")[0]] = sum(len(record["answers"]) == 1 for record in records)
    return counts


def test_paper_config_gives_the_papers_train_set():
    if not (DATA / "train").is_dir():
        pytest.skip(f"the real EntityQuestions data are not at {DATA}")
    settings = paper_dataset_settings()
    frame, templates = dataset.read_entityquestions(DATA, splits=["train"])
    prepared = dataset.prepare(
        frame,
        templates,
        relations=settings["relations"],
        per_relation=settings["per_relation"],
        single_answer_train=settings["single_answer_train"],
        dedupe=settings["dedupe"],
        seed=settings["seed"],
    )
    train = prepared.splits["train"]
    assert len(train) == PAPER_TRAIN_QUESTIONS
    expected = single_answer_counts(DATA / "train")
    assert len(expected) == RELATIONS
    assert train["relation"].value_counts().to_dict() == expected
    assert prepared.summary["relations"] == sorted(expected, key=dataset.relation_sort_key)
    assert prepared.summary["splits"]["train"]["kept"] == PAPER_TRAIN_QUESTIONS


def test_both_paper_configurations_differ_in_run_and_model_only():
    qwen, llama = (
        yaml.safe_load((ROOT / "configs" / f"paper-{model}.yaml").read_text()) for model in ("qwen2-7b", "llama3-8b")
    )
    assert {key: qwen[key] for key in qwen if key not in ("run", "model")} == {
        key: llama[key] for key in llama if key not in ("run", "model")
    }
    assert llama["model"]["source"] == "meta-llama/Meta-Llama-3-8B"
