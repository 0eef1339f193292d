"""Few-shot prompts: the prompt format and the exemplar draws.

A prompt is `k_shot` exemplars of the question's relation, drawn from train and never the
question itself, followed by the question with its answer left open.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gradual.config import DEFAULTS
from gradual.errors import InputError
from gradual.matching import ANSWER_END, normalize
from gradual.seeding import rng_for, stable_seed
from gradual.stages import BASE, TRAINED_STATE_PATTERN

PROMPT_COLUMNS = ["question_id", "prompt_index", "prompt", "exemplar_ids", "prefix_chars"]
PROMPT_SET_KINDS = ("detect", "retest", "eval")
REDETECT_PROMPTS = ("fresh", "same")
# Every name `prompt_set_of` gives: a kind, and for detection and retest an optional state.
PROMPT_SET_PATTERN = rf"eval|(?:detect|retest)(?:-(?:{TRAINED_STATE_PATTERN}))?"


def prompt_set_of(state: str, kind: str, redetect_prompts: str) -> str:
    """The prompt set a state's generation of `kind` reads: the untuned model's own (`detect`,
    `retest`) and the evaluation prompts (`eval`) as they are; a fine-tuned state's detection and
    retest under `fresh` re-detection its own, `<kind>-<state>` (new exemplars, the paper's random
    prompts); under `same` the untuned model's, so that an unchanged model answers the same."""
    if kind not in PROMPT_SET_KINDS or redetect_prompts not in REDETECT_PROMPTS:
        raise ValueError(f"unknown prompt set {kind!r} or re-detection prompts {redetect_prompts!r}")
    fresh = kind != "eval" and state != BASE and redetect_prompts == "fresh"
    return f"{kind}-{state}" if fresh else kind


def prompt_set_seed(name: str, seeds: dict[str, int]) -> int:
    """The exemplar seed of a prompt set: its kind's (`seeds`: detect, retest, eval), and for a
    state's own set `<kind>-<state>` one derived from it and the state, so every state draws apart."""
    kind, _, state = name.partition("-")
    return stable_seed(seeds[kind], state) if state else seeds[kind]


@dataclass(frozen=True)
class PromptFormat:
    """How one QA pair is written (`template`) and how blocks are joined (`separator`)."""

    template: str = DEFAULTS["prompt"]["template"]
    separator: str = DEFAULTS["prompt"]["separator"]

    def __post_init__(self):
        for field in ("{question}", "{answer}"):
            if self.template.count(field) != 1:
                raise InputError(f"prompt.template must contain {field} exactly once: {self.template!r}")
        if self.template.index("{answer}") < self.template.index("{question}"):
            raise InputError(f"prompt.template must put {{answer}} after {{question}}: {self.template!r}")
        after_answer = self.template.split("{answer}", 1)[1] + self.separator
        if ANSWER_END not in after_answer:
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
    exemplar_pool: int | None = None,
) -> pd.DataFrame:
    """`n_prompts` prompts per question, each with `k_shot` distinct exemplars of its relation.

    Each question draws from its own generator (config seed, question id), so its prompts do
    not change when other questions are added, removed or sharded differently. By default every
    prompt draws its own exemplars (the paper). With `exemplar_pool` N, each relation has N seeded
    exemplar sets and a question draws `n_prompts` of those without its own question in them: the
    prompts then share their starts (`prefix_chars`, 0 without a pool), which a backend encodes once.
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
    exemplar_sets = {}
    if exemplar_pool:
        exemplar_sets = {
            relation: [
                rng_for(seed, relation, "pool", j).choice(len(pool[0]), size=min(k_shot, len(pool[0])), replace=False)
                for j in range(exemplar_pool)
            ]
            for relation, pool in pools.items()
        }
    rows = []
    for question_id, relation, question in zip(questions["question_id"], questions["relation"], questions["question"]):
        if relation not in pools:
            raise InputError(f"relation {relation} of question {question_id} has no train questions for exemplars")
        pool_questions, pool_answers, pool_ids, pool_keys = pools[relation]
        own = pool_keys == normalize(question)
        candidates = np.flatnonzero(~own)
        if len(candidates) < k_shot:
            raise InputError(
                f"relation {relation} has {len(candidates)} train questions besides {question_id}; "
                f"k_shot = {k_shot} exemplars are needed"
            )
        rng = rng_for(seed, question_id)
        if exemplar_pool:
            eligible = [chosen for chosen in exemplar_sets[relation] if not own[chosen].any()]
            if len(eligible) < n_prompts:
                raise InputError(
                    f"question {question_id}: only {len(eligible)} of the {exemplar_pool} exemplar sets of relation "
                    f"{relation} leave it out, and n_prompts = {n_prompts} are needed; raise detection.exemplar_pool"
                )
            draws = [eligible[i] for i in rng.choice(len(eligible), size=n_prompts, replace=False)]
        else:
            draws = [rng.choice(candidates, size=k_shot, replace=False) for _ in range(n_prompts)]
        query = prompt_format.query(question)
        for prompt_index, chosen in enumerate(draws):
            prompt = prompt_format.prompt(list(zip(pool_questions[chosen], pool_answers[chosen])), question)
            prefix_chars = len(prompt) - len(query) if exemplar_pool else 0
            rows.append((question_id, prompt_index, prompt, pool_ids[chosen].tolist(), prefix_chars))
    return pd.DataFrame(rows, columns=PROMPT_COLUMNS)
