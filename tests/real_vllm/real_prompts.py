"""Real EntityQuestions prompts for the engine tests: the workplace copy of the dataset where it is
(`../shared/data/entityquestions`), else the sample data shipped with the package."""

from pathlib import Path

from gradual import SAMPLE_DATASET
from gradual.dataset import prepare, read_entityquestions
from gradual.detection import gold_answers
from gradual.prompts import PromptFormat, build_prompts

ROOT = Path(__file__).resolve().parents[2]
ENTITY_QUESTIONS = ROOT.parent / "shared" / "data" / "entityquestions"
RELATIONS = ["P17", "P19", "P36", "P176"]  # partly, hardly and well known to SmolLM2


def real_questions_and_prompts(per_relation: int = 6, n_prompts: int = 2, k_shot: int = 2):
    """`per_relation` train questions of each relation, `n_prompts` few-shot prompts each, and their golds
    (two-shot: on EntityQuestions that makes some questions MaybeKnown to SmolLM2, not only all or nothing)."""
    data = ENTITY_QUESTIONS if (ENTITY_QUESTIONS / "train").is_dir() else SAMPLE_DATASET
    frame, templates = read_entityquestions(data, splits=["train"])
    train = prepare(frame, templates, RELATIONS, per_relation={"train": 60}).splits["train"]
    questions = train.groupby("relation", sort=False).head(per_relation).reset_index(drop=True)
    prompts = build_prompts(questions, train, n_prompts, k_shot, 0, PromptFormat())
    return questions, prompts, gold_answers(questions)
