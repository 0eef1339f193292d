"""Fine-tuning on transformers' Trainer against the hand-written loop it replaced, and on 1 against 2 processes.

    python bench/training.py --model resources/models/smollm2-135m-instruct-<id> --threads 2
    python bench/training.py --model ... --runs "trainer,trainer in shuffled order" --dtype float32

Every run trains the same LoRA adapter (fresh, seeded) with `finetune` on the same examples, the
packaged sample dataset's first `--examples` train questions as `gradual.training` trains on them
(zero-shot prompt, answer line), every epoch, and scores the first `--dev-questions` dev questions after each epoch
(greedy answers through the `hf` backend, any gold answer counts). The runs:

- loop: `finetune` as it was before the Trainer (commit 5944eb9, read from git into a temporary
  module): the same steps (the same seeded shuffle per epoch, steps sorted by length into micro
  batches) and the same loss per step;
- trainer: `finetune` now, one process;
- trainer in shuffled order: the same, with micro batches cut in the shuffled order (no sorting by
  length within a step), to see what the sorting gains;
- trainer on 2 processes: `finetune(processes=2)` (gloo on the CPU), each process on half the threads.

It prints each epoch's train loss (the loop: the mean over the epoch's answer tokens; the Trainer:
the mean of its steps' losses, each the mean over the step's answer tokens), dev accuracy, seconds
(evaluation included) and training tokens per second (prompt and answer tokens, padding not
counted), and the largest difference of each run's last adapter from the loop's (without dropout by
default: the loop reseeded dropout every epoch, the Trainer seeds it once, and 2 processes draw
other masks for an example than one process does).
"""

import argparse
import importlib.util
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file

from gradual import SAMPLE_DATASET, training
from gradual.accelerator import DTYPES
from gradual.dataset import prepare, read_entityquestions
from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.matching import is_correct
from gradual.prompts import PromptFormat

BEFORE_TRAINER = "5944eb9"
RUNS = ("loop", "trainer", "trainer in shuffled order", "trainer on 2 processes")


def loop_module(folder: Path):
    """`gradual.training` as of BEFORE_TRAINER, written into `folder` and imported as a module of its own."""
    path = folder / "training_loop.py"
    path.write_text(
        subprocess.run(
            ["git", "-C", str(Path(__file__).parent), "show", f"{BEFORE_TRAINER}:src/gradual/training.py"],
            capture_output=True, text=True, check=True,
        ).stdout
    )  # fmt: skip
    spec = importlib.util.spec_from_file_location("training_loop", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shuffled_order(step_plan):
    """`step_plan` with every example of the same length: the sort keeps the shuffled order."""
    return lambda lengths, *args: step_plan({k: [0] * len(v) for k, v in lengths.items()}, *args)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model", required=True, help="a transformers model directory (resources/models/<name>-<id> after a run)"
    )
    parser.add_argument("--examples", type=int, default=128, help="train questions to fine-tune on")
    parser.add_argument("--dev-questions", type=int, default=80, help="how many dev questions score an epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rank", type=int, default=16, help="LoRA rank")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--lora-dropout", type=float, default=0.0, help="0: adapters comparable weight by weight")
    parser.add_argument("--batch-size", type=int, default=16, help="examples per optimizer step")
    parser.add_argument("--micro-batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--dtype", default="auto", choices=DTYPES, help="the model's dtype (model.compute_dtype)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"which runs, comma-separated, of: {', '.join(RUNS)}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = training.TrainingSettings(
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        micro_batch_size=args.micro_batch_size,
        lora_rank=args.rank,
        lora_dropout=args.lora_dropout,
        dtype=args.dtype,
    )
    frame, templates = read_entityquestions(SAMPLE_DATASET)
    splits = prepare(frame, templates).splits
    train = splits["train"].head(args.examples)
    pairs = train.assign(answer=[answers[0] for answers in train["answers"]])
    examples = training.training_examples(pairs, PromptFormat())
    dev = splits["dev"].head(args.dev_questions)
    dev_prompts = [PromptFormat().query(question) for question in dev["question"]]

    def evaluate(model, tokenizer):
        backend = HFBackend.from_model(model, tokenizer, GenerationSettings(max_new_tokens=16, n_samples=1))
        answers = backend.greedy(dev_prompts)
        return {"dev_accuracy": sum(map(is_correct, answers, dev["answers"])) / len(dev)}

    print(f"{len(examples)} examples, {len(dev)} dev questions, {args.threads} threads, {settings}")
    frames, adapters = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.runs.split(","):
            finetune = loop_module(Path(scratch)).finetune if name == "loop" else training.finetune
            kwargs = {"processes": 2} if name == "trainer on 2 processes" else {}
            if name == "trainer in shuffled order":
                original, training.step_plan = training.step_plan, shuffled_order(training.step_plan)
            try:
                folder = Path(scratch) / name
                metrics = finetune(args.model, lambda epoch: examples, settings, folder, evaluate, **kwargs)
            finally:
                if name == "trainer in shuffled order":
                    training.step_plan = original
            frames.append(metrics[training.METRIC_COLUMNS].drop(columns="test_accuracy").assign(run=name))
            adapters[name] = load_file(folder / f"epoch-{args.epochs}" / "adapter" / "adapter_model.safetensors")
    table = pd.concat(frames).set_index(["run", "epoch"])
    print(table.round(4).to_string())
    print(table.groupby("run", sort=False)[["seconds"]].sum().round(1).to_string())
    if "loop" in adapters:
        for name, weights in adapters.items():
            if name != "loop":
                largest = max((weights[key] - adapters["loop"][key]).abs().max().item() for key in weights)
                scale = max(adapters["loop"][key].abs().max().item() for key in weights)
                print(f"{name}: last adapter differs from the loop's by at most {largest:.3g} (weights to {scale:.3g})")


if __name__ == "__main__":
    main()
