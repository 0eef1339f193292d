"""Before trusting a new model family: the checks the tests run on SmolLM2 and Gemma 3, on any model.

    python -m gradual.modelcheck resources/models/<name>-<id>

Each line says PASS or FAIL and why; the exit status is 1 where one fails. What they check is what
depends on the architecture: the `hf` backend's greedy answers equal `transformers.generate`'s on
few-shot prompts of the packaged sample data; its samples, drawn from the prompts' kept key/value
cache after the greedy pass, do not depend on batch size or sampling wave (a cache it cannot branch
is encoded again, slower, and said here); and the training loss covers exactly the answer tokens.
"""

import argparse
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from gradual import SAMPLE_DATASET
from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.matching import answer_line
from gradual.prompts import PromptFormat, build_prompts

# float32: there the answers of a prompt do not depend on the shape of its batch, so the checks can ask
# for equality. In bfloat16 the CPU's and GPU's matrix kernels pick their reduction order by shape
# (a batch of one decodes with other sums than a batch of eight), and padding shifts the sums of
# attention: two correct implementations then agree up to near ties (`divergence_gap`).
SETTINGS = GenerationSettings(
    max_new_tokens=10, n_samples=4, temperature=1.0, top_k=40, batch_size=8, seed=0, dtype="float32"
)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def sample_prompts(relations=("P17", "P19", "P36"), per_relation: int = 2, n_prompts: int = 2) -> list[str]:
    """Four-shot prompts of the packaged sample data: `per_relation` questions, `n_prompts` prompts each."""
    from gradual.dataset import prepare, read_entityquestions

    frame, templates = read_entityquestions(SAMPLE_DATASET)
    train = prepare(frame, templates, list(relations)).splits["train"]
    asked = train.groupby("relation", sort=False).head(per_relation).reset_index(drop=True)
    return build_prompts(asked, train, n_prompts, 4, 0, PromptFormat())["prompt"].tolist()


def greedy_against_generate(folder: str | Path, backend: HFBackend, prompts: list[str]) -> list[tuple[str, str]]:
    """(our greedy continuation, `generate`'s) for each prompt, one prompt at a time on their side, in
    the backend's dtype; `answer_line` of each is what detection scores."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=backend.model.dtype).to(backend.model.device).eval()
    pairs = []
    for prompt, text in zip(prompts, backend.greedy(prompts)):
        encoded = tokenizer(prompt, return_tensors="pt").to(model.device)
        with torch.inference_mode():
            reference = model.generate(
                input_ids=encoded["input_ids"],
                attention_mask=encoded["attention_mask"],
                max_new_tokens=backend.settings.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
            )
        pairs.append((text, tokenizer.decode(reference[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True)))
    return pairs


def same_answers(pairs: list[tuple[str, str]]) -> list[bool]:
    return [answer_line(ours) == answer_line(theirs) for ours, theirs in pairs]


def divergence_gap(model, tokenizer, prompt: str, ours: str, theirs: str) -> float | None:
    """How close to a tie two continuations of `prompt` part: at their first differing token, the
    difference of the two tokens' logits under `model` (a float32 reference); None where neither
    differs from the other before one ends."""
    import torch

    prompt_ids = tokenizer(prompt).input_ids
    a, b = (tokenizer(text, add_special_tokens=False).input_ids for text in (ours, theirs))
    split = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if split is None:
        return None
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt_ids + a[:split]], device=model.device)).logits[0, -1].float()
    return abs(logits[a[split]] - logits[b[split]]).item()


def samples_in_batches_and_waves(backend: HFBackend, prompts: list[str]) -> dict:
    """Samples 0-3 of every prompt drawn after its greedy answer (`after_greedy`), the greedy answers
    before and after them, and the same samples of the prompts from the sixth on, in batches of 3 rows
    and in two waves (sample 0, then 1-3): `waves` must equal `after_greedy[5:]`."""
    rows, seeds = list(range(len(prompts))), list(range(40, 40 + len(prompts)))
    session = backend.open(prompts, seeds)
    greedy = session.greedy()
    after_greedy = session.sample(rows, range(4))
    narrow = HFBackend.from_model(backend.model, backend.tokenizer, replace(backend.settings, batch_size=3))
    later = narrow.open(prompts[5:], seeds[5:])
    first, rest = later.sample(rows[:-5], range(1)), later.sample(rows[:-5], range(1, 4))
    return {
        "greedy": greedy,
        "greedy_again": session.greedy(),
        "after_greedy": after_greedy,
        "waves": [a + b for a, b in zip(first, rest)],
        "branchable": session.branchable,
    }


def loss_labels(tokenizer, question: str = "What is the capital of France?", answer: str = "Paris") -> dict:
    """The training example of one pair: its prompt tokens, the tokens that carry a loss, and the target."""
    from gradual.training import encode_example, training_examples

    pairs = pd.DataFrame({"question_id": ["q"], "question": [question], "answer": [answer]})
    example = training_examples(pairs, PromptFormat()).iloc[0]
    encoded = encode_example(tokenizer, example["prompt"], example["target"])
    labelled = encoded["labels"] != -100
    return {
        "prompt_ids": tokenizer(example["prompt"]).input_ids,
        "input_ids": encoded["input_ids"].tolist(),
        "labelled": labelled.tolist(),
        "labelled_text": tokenizer.decode(encoded["input_ids"][labelled]),
        "target": example["target"],
    }


def run_checks(folder: str | Path) -> list[Check]:
    backend = HFBackend(folder, SETTINGS)
    prompts = sample_prompts()
    pairs = greedy_against_generate(folder, backend, prompts)
    equal = sum(same_answers(pairs))
    drawn = samples_in_batches_and_waves(backend, prompts)
    labels = loss_labels(backend.tokenizer)
    prompt_length = len(labels["prompt_ids"])
    masked_prompt = labels["input_ids"][:prompt_length] == labels["prompt_ids"] and not any(
        labels["labelled"][:prompt_length]
    )
    cache = "kept and branched" if drawn["branchable"] else "encoded again for every decoding (slower)"
    return [
        Check("greedy equals transformers.generate", equal == len(pairs), f"{equal} of {len(pairs)} prompts"),
        Check(
            "samples the same in any batch and wave",
            drawn["waves"] == drawn["after_greedy"][5:] and drawn["greedy_again"] == drawn["greedy"],
            f"{len(prompts) - 5} prompts x 4 samples; the prompts' cache is {cache}",
        ),
        Check(
            "the loss covers exactly the answer tokens",
            masked_prompt and all(labels["labelled"][prompt_length:]) and labels["labelled_text"] == labels["target"],
            f"labelled {labels['labelled_text']!r} after {prompt_length} prompt tokens",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a transformers model folder (resources/models/<name>-<id>, or your own)")
    checks = run_checks(parser.parse_args(argv).model)
    for check in checks:
        print(f"{'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
