"""Training throughput of the project's LoRA step against a naive padded loop, on the same examples.

    python bench/training.py --model resources/models/smollm2-135m-instruct-<id> --examples 128 --threads 2
    python bench/training.py --model ... --dtype float32 --loops grouped     # the project's step in float32

The examples are the packaged sample dataset's questions as `gradual.training` trains on them
(zero-shot prompt, answer line). All three loops see them in the same shuffled order, cut into the
same optimizer steps and micro batches, with the same LoRA adapter (fresh each time) and AdamW:

- grouped: the project's step as `finetune` runs it, the step's examples sorted by length into
  micro batches (`length_grouped`, `accumulate_gradients`);
- in order: the project's step on micro batches cut in shuffled order, each padded to its longest
  (what `finetune` did before grouping by length);
- padded: what a user would write first, every micro batch padded to `--max-length` tokens and the
  model's own mean loss per micro batch.

Every loop runs its model in `--dtype` (`auto`, as `finetune` does: bfloat16 where the hardware has
it), the LoRA weights in float32 as PEFT keeps them. Throughput counts the prompt and answer tokens
(padding not counted) per second of training; each loop runs one untimed micro batch first. On 2
threads the command above takes about 3 minutes, most of it in the padded loop. Peak RSS is the process's high-water mark after each loop, so a
loop's figure covers the loops before it too (they run in the order above).
"""

import argparse
import resource
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from peft import get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from gradual import SAMPLE_DATASET
from gradual.accelerator import DTYPES, dtype_name, resolve_dtype
from gradual.dataset import prepare, read_entityquestions
from gradual.prompts import PromptFormat
from gradual.training import (
    TrainingSettings,
    accumulate_gradients,
    collate,
    encode_example,
    length_grouped,
    training_examples,
)


def sample_examples(tokenizer, count: int, seed: int) -> list[dict[str, torch.Tensor]]:
    """`count` encoded examples of the sample dataset's questions (all splits, repeated when more
    are asked for than it has), in a fixed shuffled order."""
    frame, templates = read_entityquestions(SAMPLE_DATASET)
    questions = pd.concat(prepare(frame, templates).splits.values(), ignore_index=True)
    pairs = questions.assign(answer=[answers[0] for answers in questions["answers"]])
    examples = training_examples(pairs, PromptFormat())
    encoded = [encode_example(tokenizer, p, t) for p, t in zip(examples["prompt"], examples["target"])]
    order = np.resize(np.random.default_rng(seed).permutation(len(encoded)), count)
    return [encoded[i] for i in order]


def padded_backward(model, micro_batches: list[list[dict]], pad_id: int, max_length: int) -> None:
    """The naive step: every micro batch padded to `max_length`, the mean of the model's loss."""
    for micro in micro_batches:
        batch = collate(micro, pad_id)
        extra = max_length - batch["input_ids"].shape[1]
        labels = F.pad(batch["labels"], (0, extra), value=-100)
        loss = model(
            input_ids=F.pad(batch["input_ids"], (0, extra), value=pad_id),
            attention_mask=F.pad(batch["attention_mask"], (0, extra), value=0),
            labels=labels,
            use_cache=False,
        ).loss
        (loss / len(micro_batches)).backward()


def in_order(step_examples: list[dict], micro_batch_size: int) -> list[list[dict]]:
    """Micro batches cut in the shuffled order, a random mix of lengths."""
    return [step_examples[i : i + micro_batch_size] for i in range(0, len(step_examples), micro_batch_size)]


def train_seconds(model_dir, settings: TrainingSettings, examples, backward, cut) -> float:
    """Seconds for one pass over `examples` with a fresh adapter, after an untimed warm-up micro batch."""
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=resolve_dtype(settings.dtype, "cpu"))
    model = get_peft_model(model, settings.lora_config()).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    steps = [examples[i : i + settings.batch_size] for i in range(0, len(examples), settings.batch_size)]

    backward(model, cut(steps[0], settings.micro_batch_size)[:1])  # warm-up, untimed
    model.zero_grad(set_to_none=True)
    started = time.perf_counter()
    for step in steps:
        backward(model, cut(step, settings.micro_batch_size))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", required=True, help="a transformers model directory (resources/models/<name>-<id> after a run)"
    )
    parser.add_argument("--examples", type=int, default=128)
    parser.add_argument("--rank", type=int, default=64, help="LoRA rank")
    parser.add_argument("--batch-size", type=int, default=32, help="examples per optimizer step")
    parser.add_argument("--micro-batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=64, help="the padded loop's fixed width in tokens")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--dtype", default="auto", choices=DTYPES, help="the model's dtype (model.compute_dtype)")
    parser.add_argument("--loops", default="grouped,in order,padded", help="which loops to run, comma-separated")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = TrainingSettings(
        epochs=1,
        learning_rate=1e-4,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
        lora_rank=args.rank,
        dtype=args.dtype,
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    examples = sample_examples(tokenizer, args.examples, settings.seed)
    lengths = [len(example["input_ids"]) for example in examples]
    if max(lengths) > args.max_length:
        parser.error(f"--max-length {args.max_length} is shorter than the longest example, {max(lengths)} tokens")
    tokens = sum(lengths)
    print(
        f"{len(examples)} examples, {tokens} tokens ({min(lengths)}-{max(lengths)} each), {args.threads} threads, "
        f"model in {dtype_name(resolve_dtype(args.dtype, 'cpu'))}"
    )

    def project_step(model, micro_batches):
        accumulate_gradients(model, micro_batches, pad_id, torch.device("cpu"))

    def padded_step(model, micro_batches):
        padded_backward(model, micro_batches, pad_id, args.max_length)

    loops = {
        "grouped": (project_step, length_grouped),
        "in order": (project_step, in_order),
        "padded": (padded_step, in_order),
    }
    rows = []
    for name in args.loops.split(","):
        backward, cut = loops[name]
        seconds = train_seconds(args.model, settings, examples, backward, cut)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append({"loop": name, "seconds": seconds, "tokens_per_s": tokens / seconds, "peak_rss_mb": peak_mb})
    table = pd.DataFrame(rows).set_index("loop")
    print(table.round(1).to_string())
    for baseline in [name for name in ("padded", "in order") if name in table.index and "grouped" in table.index]:
        ratio = table.loc["grouped", "tokens_per_s"] / table.loc[baseline, "tokens_per_s"]
        print(f"grouped / {baseline}: {ratio:.2f}x tokens/s")


if __name__ == "__main__":
    main()
