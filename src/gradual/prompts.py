"""Few-shot prompts: the prompt format and the exemplar draws.

A prompt is `k_shot` exemplars of the question's relation, drawn from train and never the
question itself, followed by the question with its answer left open.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradual.errors import InputError
from gradual.matching import normalize
from gradual.seeding import rng_for

PROMPT_COLUMNS = ["question_id", "prompt_index", "prompt", "exemplar_ids"]


@dataclass(frozen=True)
class PromptFormat:
    """How one QA pair is written (`template`) and how blocks are joined (`separator`)."""

    template: str = "Q: {question}\nA: {answer}"
    separator: str = "\n\n"

    def __post_init__(self):
        for field in ("{question}", "{answer}"):
            if self.template.count(field) != 1:
                raise InputError(f"prompt.template must contain {field} exactly once: {self.template!r}")
        if self.template.index("{answer}") < self.template.index("{question}"):
            raise InputError(f"prompt.template must put {{answer}} after {{question}}: {self.template!r}")
        after_answer = self.template.split("{answer}", 1)[1] + self.separator
        if "\n" not in after_answer:
            raise InputError(
                f"prompt.separator must contain a line break (or prompt.template end its answer with one): with "
                f"{self.separator!r} an exemplar's answer runs into the next block, and the answer is the first line"
            )

    def example(self, question: str, answer: str) -> str:
        return self.template.replace("{question}", question).replace("{answer}", answer)

    def query(self, question: str) -> str:
        """The question with the answer left for the model; trailing spaces are cut so the
        model writes its own leading space, as tokenizers expect."""
        head = self.template.split("{answer}", 1)[0]
        return head.replace("{question}", question).rstrip(" ")

    def prompt(self, exemplars: list[tuple[str, str]], question: str) -> str:
        blocks = [self.example(q, a) for q, a in exemplars]
        return self.separator.join([*blocks, self.query(question)])


def build_prompts(
    questions: pd.DataFrame,
    train: pd.DataFrame,
    n_prompts: int,
    k_shot: int,
    seed: int,
    prompt_format: PromptFormat,
) -> pd.DataFrame:
    """`n_prompts` prompts per question, each with `k_shot` distinct exemplars of its relation.

    Each question draws from its own generator (config seed, question id), so its prompts do
    not change when other questions are added, removed or sharded differently.
    """
    pools = {
        relation: (
            group["question"].to_numpy(),
            group["answers"].map(lambda answers: answers[0]).to_numpy(),
            group["question_id"].to_numpy(),
            group["question"].map(normalize).to_numpy(),
        )
        for relation, group in train.groupby("relation")
    }
    rows = []
    for question_id, relation, question in zip(questions["question_id"], questions["relation"], questions["question"]):
        if relation not in pools:
            raise InputError(f"relation {relation} of question {question_id} has no train questions for exemplars")
        pool_questions, pool_answers, pool_ids, pool_keys = pools[relation]
        candidates = np.flatnonzero(pool_keys != normalize(question))
        if len(candidates) < k_shot:
            raise InputError(
                f"relation {relation} has {len(candidates)} train questions besides {question_id}; "
                f"k_shot = {k_shot} exemplars are needed"
            )
        rng = rng_for(seed, question_id)
        for prompt_index in range(n_prompts):
            chosen = rng.choice(candidates, size=k_shot, replace=False)
            exemplars = list(zip(pool_questions[chosen], pool_answers[chosen]))
            rows.append(
                (question_id, prompt_index, prompt_format.prompt(exemplars, question), pool_ids[chosen].tolist())
            )
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)
