"""Throughput of the hf backend against plain `transformers.generate`, on the same prompts.

    python bench/generation.py --model resources/models/smollm2-135m-instruct-<id> --prompts 48

Both sides stop at the end of the answer line (the baseline through `eos_token_id`), run the
same batch size and threads, and produce the same number of answers. The baseline encodes each
prompt once per sample (`num_return_sequences` repeats the input); ours encodes it once.
"""

import argparse
import time

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual import SAMPLE_DATASET
from gradual.dataset import prepare, read_entityquestions
from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.prompts import PromptFormat, build_prompts


def sample_prompts(count: int) -> list[str]:
    frame, templates = read_entityquestions(SAMPLE_DATASET)
    train = prepare(frame, templates).splits["train"]
    prompts = build_prompts(train, train, n_prompts=1, k_shot=4, seed=0, prompt_format=PromptFormat())
    return prompts["prompt"].head(count).tolist()


def baseline(model, tokenizer, prompts, settings, stop_ids, n, do_sample):
    per_batch = max(1, settings.batch_size // n)
    for start in range(0, len(prompts), per_batch):
        encoded = tokenizer(prompts[start : start + per_batch], return_tensors="pt", padding=True)
        model.generate(
            **encoded,
            do_sample=do_sample,
            num_return_sequences=n,
            temperature=settings.temperature if do_sample else None,
            top_k=settings.top_k if do_sample else None,
            top_p=None,
            max_new_tokens=settings.max_new_tokens,
            eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id,
        )


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", required=True, help="a transformers model directory (resources/models/<name>-<id> after a run)"
    )
    parser.add_argument("--prompts", type=int, default=48)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    weights = args.model
    settings = GenerationSettings(max_new_tokens=16, n_samples=args.samples, batch_size=args.batch_size)
    ours = HFBackend(weights, settings)
    tokenizer = AutoTokenizer.from_pretrained(weights, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(weights, dtype=torch.float32).eval()
    stop_ids = ours.stop_ids.tolist()
    prompts = sample_prompts(args.prompts)
    seeds = list(range(len(prompts)))
    rows = []
    for mode, n in (("greedy", 1), ("sample", args.samples)):
        do_sample = mode == "sample"
        base = timed(lambda: baseline(model, tokenizer, prompts, settings, stop_ids, n, do_sample))
        mine = timed(lambda: ours.sample(prompts, seeds) if do_sample else ours.greedy(prompts))
        rows.append(
            {
                "mode": mode,
                "answers": len(prompts) * n,
                "generate() s": round(base, 2),
                "hf backend s": round(mine, 2),
                "answers/s generate()": round(len(prompts) * n / base, 1),
                "answers/s hf backend": round(len(prompts) * n / mine, 1),
                "speed-up": round(base / mine, 2),
            }
        )
    print(f"{len(prompts)} prompts, batch {args.batch_size} rows, {args.threads} threads, {weights}")
    print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
