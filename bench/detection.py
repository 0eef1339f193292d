"""Knowledge detection throughput: the project's `hf` and `vllm` backends against plain `transformers.generate`.

    python bench/detection.py --model resources/models/smollm2-135m-instruct-<id> --questions 1 --threads 2
    python bench/detection.py --model ... --questions 1 --threads 2 --exemplar-pool 20
    python bench/detection.py --model ... --questions 25 --batch-size 1024          # on a GPU
    python bench/detection.py --model ... --questions 2 --dtype float32                 # every side in float32
    .venv-vllm/bin/python bench/detection.py --model ... --questions 2 --sides bcd --dtype bfloat16

In one process, on the same prompts (EntityQuestions train questions, `--n-prompts` few-shot
prompts each), the whole detection of the same questions, as each side does it:

  (a) `generate()` one prompt at a time: a greedy answer, then `--samples` samples
      (`num_return_sequences`) for every prompt;
  (b) `generate()` on left-padded batches of `--batch-size` rows, greedy, then sampled with
      `num_return_sequences` (so `batch-size / samples` prompts a batch), again every prompt;
  (c) `gradual.detection.generate_answers` with the `hf` backend, as a workflow job runs it: each prompt
      encoded once, samples only for the questions no greedy answer got right, drawn until one
      is right (`--full-samples` to draw them all), shared exemplar sets encoded once with
      `--exemplar-pool`.
  (d) the same `generate_answers` with the `vllm` backend (vLLM's CPU build on a CPU, eager unless
      `--vllm-compile`); its engine start is timed apart, and `--seed-cost` times the same
      sampling requests with per-request seeds and with the engine's seed alone.

Every side runs in `--dtype` (`auto`, as a workflow job: bfloat16 where the hardware has it).

All stop at the end of the answer line (the baselines through `eos_token_id`), run the same
threads and batch size, and print questions per second, the ratios, peak memory (resident set
on CPU, allocated on a GPU) and whether (c)'s greedy answers equal (a)'s.
"""

import argparse
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual.accelerator import DTYPES, device_and_dtype
from gradual.categories import assign_categories
from gradual.dataset import prepare, read_entityquestions
from gradual.detection import generate_answers, score
from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.matching import answer_line
from gradual.prompts import PromptFormat, build_prompts

RELATIONS = ["P17", "P19", "P36", "P40"]
MATCH_MODE = "substring"  # the config's default


def detection_prompts(data: Path, questions: int, n_prompts: int, exemplar_pool: int | None):
    """The first `questions` train questions of each relation, exemplars from 100 train questions per relation."""
    frame, templates = read_entityquestions(data, splits=["train"])
    train = prepare(frame, templates, RELATIONS, per_relation={"train": 100}).splits["train"]
    asked = train.groupby("relation", sort=False).head(questions).reset_index(drop=True)
    prompts = build_prompts(asked, train, n_prompts, 4, 0, PromptFormat(), exemplar_pool)
    golds = dict(zip(asked["question_id"], asked["answers"].map(list)))
    return asked, prompts, golds


class Peak:
    """Peak memory over a block: resident set (Linux's VmHWM, reset through clear_refs) or CUDA allocations."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
        else:
            Path("/proc/self/clear_refs").write_text("5")
        return self

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.gib = torch.cuda.max_memory_allocated() / 2**30
        else:
            status = Path("/proc/self/status").read_text().splitlines()
            self.gib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 2**20


def generate_baseline(model, tokenizer, prompts, settings, stop_ids, per_call: int) -> pd.DataFrame:
    """Greedy then sampled answers of every prompt with `generate()`, `per_call` prompts a call."""
    rows = []
    for do_sample, n in ((False, 1), (True, settings.n_samples)):
        prompts_per_call = per_call if not do_sample else max(1, per_call // n)
        for start in range(0, len(prompts), prompts_per_call):
            batch = prompts.iloc[start : start + prompts_per_call]
            encoded = tokenizer(batch["prompt"].tolist(), return_tensors="pt", padding=True).to(model.device)
            output = model.generate(
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
            texts = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
            for i, text in enumerate(texts):
                question, prompt_index = batch.iloc[i // n][["question_id", "prompt_index"]]
                mode = "sample" if do_sample else "greedy"
                rows.append((question, prompt_index, mode, i % n, answer_line(text)))
    return pd.DataFrame(rows, columns=["question_id", "prompt_index", "mode", "sample_index", "answer"])


def run(name: str, function, device, n_questions: int) -> tuple[dict, pd.DataFrame]:
    with Peak(device) as peak:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        generations = function()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    sampled = int((generations["mode"] == "sample").sum())
    figures = {"side": name, "seconds": round(seconds, 1), "questions/s": n_questions / seconds}
    return figures | {"answers": len(generations), "sampled": sampled, "peak GiB": round(peak.gib, 2)}, generations


def vllm_side(args, settings):
    """The vLLM backend, its engine start in seconds, and the engine options it was given."""
    from gradual.generation.vllm import VLLMBackend

    options = {"enforce_eager": not args.vllm_compile}
    start = time.perf_counter()
    backend = VLLMBackend(args.model, settings, engine_options=options)
    return backend, time.perf_counter() - start, options


def seed_cost(backend, prompts: pd.DataFrame, settings) -> dict:
    """Seconds for `n_samples` samples of every prompt in one request list, with a seed per request
    (as the backend sends them) and with none (the engine's own generator)."""
    from vllm import SamplingParams

    texts = prompts["prompt"].tolist()
    figures = {}
    for name, seeds in (("per-request seeds", range(len(texts))), ("engine seed only", [None] * len(texts))):
        params = [
            SamplingParams(
                n=settings.n_samples, temperature=settings.temperature, top_k=settings.top_k, seed=seed,
                max_tokens=settings.max_new_tokens, stop=["\n"],
            )
            for seed in seeds
        ]  # fmt: skip
        start = time.perf_counter()
        backend.llm.generate(texts, params, use_tqdm=False)
        figures[name] = time.perf_counter() - start
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a transformers model directory (resources/models/<name>-<id>)")
    parser.add_argument("--data", default="../shared/data/entityquestions", help="an EntityQuestions copy")
    parser.add_argument("--questions", type=int, default=1, help="train questions per relation (4 relations)")
    parser.add_argument("--n-prompts", type=int, default=10)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--exemplar-pool", type=int, default=None)
    parser.add_argument("--full-samples", action="store_true", help="(c) draws every sample (no early stop)")
    parser.add_argument("--sides", default="abc", help="which sides to run, e.g. bc on a GPU where (a) is slow")
    parser.add_argument("--dtype", default="auto", choices=DTYPES, help="the dtype of every side (model.compute_dtype)")
    parser.add_argument("--vllm-compile", action="store_true", help="(d): torch.compile the model (slower start)")
    parser.add_argument("--seed-cost", action="store_true", help="(d): time sampling with and without request seeds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = GenerationSettings(
        max_new_tokens=16, n_samples=args.samples, temperature=0.5, top_k=40, batch_size=args.batch_size,
        dtype=args.dtype,
    )  # fmt: skip
    asked, prompts, golds = detection_prompts(Path(args.data), args.questions, args.n_prompts, args.exemplar_pool)
    device, dtype = device_and_dtype(args.dtype)
    device = torch.device(device)
    ours = HFBackend(args.model, settings)
    tokenizer = AutoTokenizer.from_pretrained(args.model, padding_side="left")
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).to(device).eval()
    stop_ids = ours.stop_ids.tolist()
    sides = {
        "a": (
            "(a) generate, one prompt a call",
            lambda: generate_baseline(model, tokenizer, prompts, settings, stop_ids, 1),
        ),
        "b": (
            f"(b) generate, batches of {args.batch_size} rows",
            lambda: generate_baseline(model, tokenizer, prompts, settings, stop_ids, args.batch_size),
        ),
        "c": (
            "(c) gradual hf backend",
            lambda: generate_answers(
                ours, prompts, 0, "never_right", golds, MATCH_MODE, until_correct=not args.full_samples
            ),
        ),
    }
    if "d" in args.sides:
        engine, started, options = vllm_side(args, settings)
        print(f"(d) vLLM engine start: {started:.1f} s with {options}", flush=True)
        sides["d"] = (
            "(d) gradual vllm backend",
            lambda: generate_answers(
                engine, prompts, 0, "never_right", golds, MATCH_MODE, until_correct=not args.full_samples
            ),
        )
    n_questions = len(asked)
    rows, outputs = [], {}
    for key in args.sides:
        name, function = sides[key]
        figures, outputs[key] = run(name, function, device, n_questions)
        categories = assign_categories(asked, outputs[key].assign(correct=score(outputs[key], golds, MATCH_MODE)))
        rows.append(figures | categories["category"].value_counts().to_dict())
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows).fillna(0).set_index("side")
    print(
        f"\n{n_questions} questions ({', '.join(RELATIONS)}), {len(prompts)} prompts, {args.samples} samples at T=0.5 "
        f"top-k 40, batch {args.batch_size} rows, {args.threads} threads, {device} {dtype}, "
        f"exemplar pool {args.exemplar_pool}, {'full sampling' if args.full_samples else 'sampling until correct'}"
    )
    print(table.round(3).to_string())
    speed = dict(zip(args.sides, table["questions/s"]))
    for ours_key, base_key in (("c", "a"), ("c", "b"), ("d", "a"), ("d", "b"), ("d", "c")):
        if ours_key in speed and base_key in speed:
            print(f"({ours_key}) / ({base_key}) in questions per second: {speed[ours_key] / speed[base_key]:.1f}x")
    greedy = {
        key: output[output["mode"] == "greedy"].set_index(["question_id", "prompt_index"])["answer"]
        for key, output in outputs.items()
    }
    for ours_key, base_key in (("c", "a"), ("d", "a"), ("d", "c")):
        if ours_key in greedy and base_key in greedy:
            equal = (greedy[base_key] == greedy[ours_key].reindex(greedy[base_key].index)).sum()
            print(f"greedy answers of ({ours_key}) equal to ({base_key})'s: {equal} of {len(greedy[base_key])}")
    if args.seed_cost and "d" in args.sides:
        figures = seed_cost(engine, prompts, settings)
        print(
            f"(d) {settings.n_samples} samples of all {len(prompts)} prompts: "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in figures.items())
            + f" ({figures['per-request seeds'] / figures['engine seed only']:.2f}x)"
        )


if __name__ == "__main__":
    main()
