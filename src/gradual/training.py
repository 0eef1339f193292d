"""LoRA fine-tuning in epochs on transformers' `Trainer`, with a checkpoint after every epoch, resume
after a killed job, and data parallel training over several processes.

Each example is a prompt (the question as the generation backend sees it, zero exemplars)
and a target (the answer line): the loss covers the target tokens only. Every epoch draws its
examples from a caller's hook, so a stage can mix in a fresh replay draw each epoch. After each
epoch the caller's `evaluate` measures dev accuracy, and test accuracy where something reads it per
epoch (`gradual.stages.epoch_splits`); the epoch that is best on the configured split is the one
the later stages use.

Why `Trainer` and not TRL's `SFTTrainer`: the answer-only loss needs nothing but labels of -100 on
the prompt, which `encode_example` gives with the prompt encoded exactly as the generation backend
encodes it; SFTTrainer (TRL, not installed here) would add a dependency and its own tokenization
of prompt and completion.
Why a plan of micro batches (`step_plan`) rather than Trainer's sampler and `group_by_length`: each
epoch trains on its own examples (a fresh replay draw), possibly of another count, which one Trainer
epoch over one fixed dataset cannot express; so the whole training is one Trainer epoch whose micro
batches the plan lays out epoch after epoch, and a callback (`_EpochEnd`) marks the epochs' ends.
Trainer's `group_by_length` sorts across steps, changing which examples make a step; the plan sorts
within a step only, as before, which leaves each step's gradient as it is.

A checkpoint `checkpoint_dir/epoch-{k}/` holds `trainer/` (the Trainer's checkpoint of the step that
ended epoch k: adapter, optimizer, scheduler, random states, trainer state), `adapter/` (the adapter
alone, in PEFT format, loadable by `PeftModel.from_pretrained` and vLLM; hard links to the files in
`trainer/`), `metrics.json` (that epoch's row), `key.json` (what the training was, see
`training_key`) and, last, an empty `complete`. The Trainer writes `checkpoint-{step}`, which rank 0
moves into a hidden `.epoch-{k}` and completes there, then renames into place, so a folder without
`complete` is never a finished epoch.
"""

import json
import logging
import math
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from accelerate.state import AcceleratorState, PartialState
from transformers import Trainer, TrainerCallback

from gradual.accelerator import DTYPES, device_and_dtype, dtype_name, resolve_dtype
from gradual.config import DEFAULTS
from gradual.errors import InputError
from gradual.fingerprint import digest, folder_digest
from gradual.matching import ANSWER_END
from gradual.prompts import PromptFormat
from gradual.seeding import stable_seed

SPLITS = ("dev", "test")
EXAMPLE_COLUMNS = ["question_id", "prompt", "target"]
METRIC_COLUMNS = ["epoch", "train_loss", "dev_accuracy", "test_accuracy", "seconds", "train_tokens_per_second"]
DEV_CORRECT = "dev_correct"  # an epoch's 0/1 per dev question, kept with its checkpoint
# What a checkpoint holds; in the key, so checkpoints of an older format (the hand-written loop's, or
# metrics without DEV_CORRECT) are trained again rather than resumed.
CHECKPOINT_CONTENT = "Trainer checkpoints, metrics with per-question dev scores"
COMPLETE = "complete"
KEY = "key.json"
ADAPTER = "adapter"
TRAINER = "trainer"  # an epoch's Trainer checkpoint, within its folder
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# How long the other ranks wait at a collective while rank 0 evaluates an epoch (seconds)
EVALUATION_TIMEOUT = 6 * 3600

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSettings:
    """One state's training values; those it is not given are the config's defaults (gradual.config)
    for stage 1 and the first training seed. A stage's epochs and learning rate are always given."""

    epochs: int
    learning_rate: float
    weight_decay: float = DEFAULTS["training"]["stage1"]["weight_decay"]
    batch_size: int = DEFAULTS["training"]["batch_size"]
    micro_batch_size: int = DEFAULTS["training"]["micro_batch_size"]
    lora_rank: int = DEFAULTS["training"]["lora_rank"]
    lora_alpha: int = DEFAULTS["training"]["lora_alpha"]
    lora_dropout: float = DEFAULTS["training"]["lora_dropout"]
    target_modules: str | list[str] = DEFAULTS["training"]["target_modules"]
    warmup_ratio: float = DEFAULTS["training"]["warmup_ratio"]
    max_length: int = DEFAULTS["training"]["max_length"]
    seed: int = DEFAULTS["training"]["seeds"][0]
    selection_split: str = DEFAULTS["training"]["selection_split"]
    dtype: str = DEFAULTS["model"]["compute_dtype"]  # gradual.accelerator.DTYPES

    def __post_init__(self):
        if self.selection_split not in SPLITS:
            raise InputError(f"training.selection_split must be one of {SPLITS}, not {self.selection_split!r}")
        if self.dtype not in DTYPES:
            raise InputError(f"model.compute_dtype must be one of {DTYPES}, not {self.dtype!r}")
        for name in ("epochs", "batch_size", "micro_batch_size", "lora_rank", "max_length"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"training.{name} must be at least 1, not {getattr(self, name)!r}")
        if not 0 <= self.warmup_ratio <= 1:
            raise InputError(f"training.warmup_ratio must be between 0 and 1, not {self.warmup_ratio!r}")

    @classmethod
    def from_config(cls, values: dict) -> "TrainingSettings":
        """The settings among a state's training values (its stage's learning rate and weight decay
        included); keys that are not settings are ignored, absent ones take the defaults above."""
        chosen = {f.name: values[f.name] for f in fields(cls) if f.name in values}
        chosen["learning_rate"] = float(values["learning_rate"])
        chosen["weight_decay"] = float(values.get("weight_decay", cls.weight_decay))
        if isinstance(chosen.get("target_modules"), tuple):
            chosen["target_modules"] = list(chosen["target_modules"])
        return cls(**chosen)

    def lora_config(self):
        """A fresh adapter's PEFT configuration."""
        from peft import LoraConfig

        return LoraConfig(
            r=self.lora_rank,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.target_modules,
            task_type="CAUSAL_LM",
        )


def training_examples(pairs: pd.DataFrame, prompt_format: PromptFormat) -> pd.DataFrame:
    """Question/answer pairs as (question_id, prompt, target): the prompt is the zero-shot query
    the generation backend would see, the target the rest of the rendered example plus `ANSWER_END`,
    so the model also learns to end the answer line: 'Q: Where was X born?\\nA:' -> ' Paris\\n'."""
    rows = []
    for question_id, question, answer in zip(pairs["question_id"], pairs["question"], pairs["answer"]):
        prompt = prompt_format.query(question)
        full = prompt_format.example(question, str(answer))
        assert full.startswith(prompt), (full, prompt)  # query() is a prefix of example() by construction
        rows.append((question_id, prompt, full[len(prompt) :] + ANSWER_END))
    return pd.DataFrame(rows, columns=EXAMPLE_COLUMNS)


def encode_example(tokenizer, prompt: str, target: str) -> dict[str, torch.Tensor]:
    """Token ids of prompt + target, and labels that are -100 on the prompt (no loss there).

    The prompt is encoded exactly as the generation backend encodes prompts (with the tokenizer's
    default special tokens); the target follows without special tokens."""
    prompt_ids = tokenizer(prompt).input_ids
    target_ids = tokenizer(target, add_special_tokens=False).input_ids
    return {
        "input_ids": torch.tensor(prompt_ids + target_ids, dtype=torch.long),
        "labels": torch.tensor([-100] * len(prompt_ids) + target_ids, dtype=torch.long),
    }


def collate(examples: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch; independent of `tokenizer.padding_side`, which generation sets to left."""
    width = max(len(e["input_ids"]) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        input_ids[row, :n] = example["input_ids"]
        labels[row, :n] = example["labels"]
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


def select_best_epoch(metrics: pd.DataFrame, selection_split: str) -> int:
    """The epoch with the highest `{selection_split}_accuracy`; ties go to the earliest epoch."""
    if selection_split not in SPLITS:
        raise ValueError(f"selection split must be one of {SPLITS}, not {selection_split!r}")
    ordered = metrics.sort_values("epoch", kind="stable").reset_index(drop=True)
    column = ordered[f"{selection_split}_accuracy"]
    if column.isna().all():
        raise ValueError(f"no epoch has a {selection_split} accuracy")
    return int(ordered.loc[column.idxmax(), "epoch"])


def dev_scores(metrics: pd.DataFrame, question_ids: list[str]) -> pd.DataFrame:
    """Each epoch's dev answers right or wrong, question by question (epoch, question_id, correct),
    from the per-question scores every epoch's metrics row keeps (`DEV_CORRECT`)."""
    rows = [
        (int(epoch), question_id, bool(correct))
        for epoch, scores in zip(metrics["epoch"], metrics[DEV_CORRECT])
        for question_id, correct in zip(question_ids, scores, strict=True)
    ]
    return pd.DataFrame(rows, columns=["epoch", "question_id", "correct"])


def best_adapter(checkpoint_dir: str | Path, metrics: pd.DataFrame, selection_split: str) -> Path:
    """The adapter folder of the best epoch."""
    return Path(checkpoint_dir) / f"epoch-{select_best_epoch(metrics, selection_split)}" / ADAPTER


def finetune(
    model_dir: str | Path,
    epoch_pairs: Callable[[int], pd.DataFrame],
    settings: TrainingSettings,
    checkpoint_dir: str | Path,
    evaluate: Callable[..., dict[str, float]],
    init_adapter: str | Path | None = None,
    context: dict[str, str] | None = None,
    processes: int = 1,
) -> pd.DataFrame:
    """Train a LoRA adapter for `settings.epochs` epochs; returns one metrics row per epoch
    (the METRIC_COLUMNS, then any other key `evaluate` returns).

    `epoch_pairs(k)` gives epoch k's examples (question_id, prompt, target); it is called once for
    every epoch 1..epochs before training, since the schedule's length depends on all of them.
    Examples whose prompt + target exceed `max_length` tokens are dropped (the count is logged).

    One optimizer step per `batch_size` examples, its loss the mean over the answer tokens of all its
    examples (the Trainer's token-normalised gradient accumulation, across processes too), so neither
    micro batching nor the number of processes changes the gradient (see `step_plan`). `train_loss` is
    the mean of the epoch's step losses. `seconds` is the epoch's wall time, evaluation included;
    `train_tokens_per_second` counts the prompt and answer tokens (not padding) per second of training
    alone. `processes` > 1 trains data parallel (`torch.distributed`: NCCL on GPUs, one each, gloo on
    CPU); this process is rank 0, the one that evaluates and writes the checkpoints.

    Checkpoints in `checkpoint_dir` are resumed only when they belong to exactly this training:
    the same key (`training_key`: settings, every epoch's examples, starting adapter, and the
    caller's `context`, digests of what `evaluate` and the model depend on). Then the Trainer resumes
    from the newest complete epoch (adapter, optimizer, scheduler, random state) and trains only the
    later epochs; otherwise the checkpoints are removed, the log says which parts of the key changed,
    and training starts over.
    """
    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    settings = replace(
        settings, dtype=dtype_name(resolve_dtype(settings.dtype))
    )  # the key holds the dtype `auto` stood for here
    examples_by_epoch = {k: epoch_pairs(k) for k in range(1, settings.epochs + 1)}
    key = training_key(settings, examples_by_epoch, init_adapter, context or {})
    done = _resume_point(checkpoint_dir, settings.epochs, key)
    rows = [json.loads((checkpoint_dir / f"epoch-{k}" / "metrics.json").read_text()) for k in range(1, done + 1)]
    if done == settings.epochs:
        log.info("all %d epochs already trained in %s", settings.epochs, checkpoint_dir)
        return _metrics_frame(rows)
    if done:
        log.info("resuming after epoch %d", done)
    job = _Job(Path(model_dir), examples_by_epoch, settings, checkpoint_dir, init_adapter, key, done, processes)
    rows += job.run(evaluate) if processes == 1 else _data_parallel(job, evaluate)
    return _metrics_frame(rows)


def step_plan(
    lengths: dict[int, list[int]], batch_size: int, slots: int, seed: int
) -> tuple[list[list[int]], list[int]]:
    """Micro batches of indices into the epochs' examples laid end to end (epoch 1's first), and the
    number of optimizer steps done at the end of each epoch.

    Epoch k's examples are shuffled with a seed of its own and cut into steps of `batch_size`; a step
    is sorted by length and dealt into exactly `slots` (micro batches per process times processes)
    contiguous micro batches, so a micro batch pads only to examples of about its length. A slot a short
    step cannot fill holds index -1, which `_Examples` reads as an example without labels: no loss, no
    gradient. The Trainer divides every micro batch's summed loss by the step's answer-token count, so a
    step's gradient is the same in any split."""
    micro_batches, ends, offset = [], [], 0
    for epoch in sorted(lengths):
        order = offset + np.random.default_rng(stable_seed(seed, "train-epoch", epoch)).permutation(len(lengths[epoch]))
        for start in range(0, len(order), batch_size):
            step = sorted(order[start : start + batch_size].tolist(), key=lambda i: lengths[epoch][i - offset])
            micro_batches += [chunk.tolist() or [-1] for chunk in np.array_split(np.array(step, dtype=int), slots)]
        ends.append(len(micro_batches) // slots)
        offset += len(lengths[epoch])
    return micro_batches, ends


class _Examples(torch.utils.data.Dataset):
    """Encoded examples; index -1 is the first one with every label masked (see `step_plan`)."""

    def __init__(self, examples: list[dict[str, torch.Tensor]]):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if index >= 0:
            return self.examples[index]
        return {**self.examples[0], "labels": torch.full_like(self.examples[0]["labels"], -100)}


class _PlannedTrainer(Trainer):
    """A Trainer that draws its micro batches from a fixed plan (`step_plan`) instead of a sampler."""

    def __init__(self, *args, plan: list[list[int]], **kwargs):
        super().__init__(*args, **kwargs)
        self.plan = plan

    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        loader = torch.utils.data.DataLoader(self.train_dataset, batch_sampler=self.plan, collate_fn=self.data_collator)
        return self.accelerator.prepare(loader)


class _EpochEnd(TrainerCallback):
    """At the last step of each epoch: log its loss and save a checkpoint; then rank 0 evaluates, and
    completes the Trainer's `checkpoint-{step}` into `epoch-{k}` (see the module docstring)."""

    def __init__(self, ends: dict[int, int], tokens: dict[int, int], job: "_Job", tokenizer, evaluate):
        self.ends, self.tokens, self.job, self.tokenizer, self.evaluate = ends, tokens, job, tokenizer, evaluate
        self.rows = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step in self.ends:
            self.training_seconds = time.monotonic() - self.started
            control.should_log = control.should_save = True

    def on_log(self, args, state, control, logs=None, **kwargs):
        if "loss" in logs:  # the epoch's (the callback asks for a log at its end only)
            self.loss = logs["loss"]

    def on_save(self, args, state, control, model=None, **kwargs):
        PartialState().wait_for_everyone()  # every rank's random state is in the checkpoint
        if state.is_world_process_zero:
            saved = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self._complete(self.ends[state.global_step], saved, model)
        self.started = time.monotonic()

    def _complete(self, epoch: int, saved: Path, model) -> None:
        model.eval()
        scores = self.evaluate(model, self.tokenizer)
        model.train()
        row = {
            "epoch": epoch,
            "train_loss": self.loss,
            "dev_accuracy": float(scores["dev_accuracy"]),
            "test_accuracy": float(scores.get("test_accuracy", math.nan)),  # NaN: not scored per epoch
            "seconds": time.monotonic() - self.started,
            "train_tokens_per_second": self.tokens[epoch] / self.training_seconds,
        }
        row.update({name: _plain(value) for name, value in scores.items() if name not in row})
        partial = self.job.checkpoint_dir / f".epoch-{epoch}"
        partial.mkdir()
        os.replace(saved, partial / TRAINER)
        (partial / ADAPTER).mkdir()
        for name in ADAPTER_FILES:  # the adapter alone, for `best_adapter` and vLLM: links, not copies
            os.link(partial / TRAINER / name, partial / ADAPTER / name)
        (partial / "metrics.json").write_text(json.dumps(row, indent=2) + "\n")
        (partial / KEY).write_text(json.dumps(self.job.key, indent=2) + "\n")
        (partial / COMPLETE).touch()
        os.replace(partial, self.job.checkpoint_dir / f"epoch-{epoch}")
        self.rows.append(row)
        accuracies = ", ".join(
            f"{split} accuracy {row[f'{split}_accuracy']:.4f}" for split in SPLITS if f"{split}_accuracy" in scores
        )
        log.info(
            "epoch %d: train loss %.4f, %s, %.1f s, %.0f training tokens/s",
            epoch, row["train_loss"], accuracies, row["seconds"], row["train_tokens_per_second"],
        )  # fmt: skip


@dataclass(frozen=True)
class _Job:
    """One training, as every process of it runs it (picklable, for the spawned ranks)."""

    model_dir: Path
    examples_by_epoch: dict[int, pd.DataFrame]
    settings: TrainingSettings
    checkpoint_dir: Path
    init_adapter: str | Path | None
    key: dict[str, str]
    done: int  # epochs already trained: resume from `epoch-{done}`
    processes: int

    def run(self, evaluate: Callable | None) -> list[dict]:
        """Train the epochs after `done` in this process (one rank of `processes`); the new epochs'
        metrics rows on rank 0, which alone evaluates. The process group and accelerate's state are
        this run's only: read afresh before, let go after, whichever rank or outcome."""
        AcceleratorState._reset_state(reset_partial_state=True)
        try:
            return self._train(evaluate)
        finally:
            if torch.distributed.is_initialized():
                torch.distributed.destroy_process_group()
            AcceleratorState._reset_state(reset_partial_state=True)

    def _train(self, evaluate: Callable | None) -> list[dict]:
        from peft import PeftModel, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer, TrainingArguments

        settings = self.settings
        device, dtype = device_and_dtype(settings.dtype)
        tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        encoded = {
            k: _encode_epoch(tokenizer, pairs, k, settings.max_length) for k, pairs in self.examples_by_epoch.items()
        }
        accumulation = math.ceil(settings.batch_size / (settings.micro_batch_size * self.processes))
        lengths = {k: [len(example["input_ids"]) for example in examples] for k, examples in encoded.items()}
        plan, ends = step_plan(lengths, settings.batch_size, accumulation * self.processes, settings.seed)

        base = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype)
        base.config.use_cache = False  # training; generation asks for its cache itself
        torch.manual_seed(stable_seed(settings.seed, "init"))
        if self.init_adapter is not None:
            log.info("starting from adapter %s", self.init_adapter)
            model = PeftModel.from_pretrained(base, str(self.init_adapter), is_trainable=True)
        else:
            model = get_peft_model(base, settings.lora_config())
        args = TrainingArguments(
            output_dir=str(self.checkpoint_dir),
            use_cpu=device == "cpu",
            seed=stable_seed(settings.seed, "dropout"),
            per_device_train_batch_size=settings.micro_batch_size,
            gradient_accumulation_steps=accumulation,
            max_steps=ends[-1],
            learning_rate=settings.learning_rate,
            weight_decay=settings.weight_decay,
            optim="adamw_torch",
            lr_scheduler_type="cosine",
            warmup_steps=round(settings.warmup_ratio * ends[-1]),
            max_grad_norm=0.0,  # no clipping
            logging_strategy="no",  # the callback asks for a log and a checkpoint at each epoch's end
            save_strategy="no",
            report_to="none",
            remove_unused_columns=False,
            ddp_find_unused_parameters=False,
            ddp_timeout=EVALUATION_TIMEOUT,
            # the rank from the environment: a PartialState made here would start the process group
            # before TrainingArguments does, without its timeout (ddp_timeout)
            disable_tqdm=int(os.environ.get("RANK", "0")) > 0,
        )
        callback = _EpochEnd(
            {step: epoch for epoch, step in enumerate(ends, 1)},
            {k: sum(lengths[k]) for k in lengths},
            self,
            tokenizer,
            evaluate,
        )
        trainer = _PlannedTrainer(
            model=model,
            args=args,
            train_dataset=_Examples([example for k in sorted(encoded) for example in encoded[k]]),
            data_collator=partial(collate, pad_id=tokenizer.pad_token_id),
            callbacks=[callback],
            plan=plan,
        )
        log.info("%d trainable parameters on %s, model in %s", trainer.get_num_trainable_parameters(), device, dtype)
        resume = self.checkpoint_dir / f"epoch-{self.done}" / TRAINER if self.done else None
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        return callback.rows


def _data_parallel(job: _Job, evaluate: Callable) -> list[dict]:
    """Run `job` on `job.processes` ranks: this process is rank 0, the others are fresh interpreters
    (not forked, and not `multiprocessing`'s spawn, which would re-run the caller's script, a Snakemake
    one included); each takes its share of the CPU threads."""
    threads = torch.get_num_threads()
    world = _world(job.processes, threads)
    with tempfile.TemporaryDirectory() as scratch:
        spec = Path(scratch) / "job.pickle"
        spec.write_bytes(pickle.dumps(job))
        command = [sys.executable, "-c", f"from gradual.training import _rank; _rank({str(spec)!r})"]
        sys.stdout.flush()
        workers = [  # their output to the job's log, where this process's goes
            subprocess.Popen(
                command, env=os.environ | _rank_environment(rank, world), stdout=_log_file(), stderr=subprocess.STDOUT
            )
            for rank in range(1, job.processes)
        ]
        try:
            with _as_rank(0, world, threads):
                rows = job.run(evaluate)
            failed = [rank for rank, worker in enumerate(workers, 1) if worker.wait() != 0]
            if failed:
                raise RuntimeError(f"training rank(s) {failed} failed; see the log above")
            return rows
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()


def _world(processes: int, threads: int) -> dict[str, str]:
    """The environment every rank shares: where the process group meets, the world's size, each
    rank's share of the threads, and the library as this process imports it (a Snakemake script
    reaches it through sys.path, `scripts/gradual`, which a fresh interpreter does not inherit)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]),
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": str(processes),
        "OMP_NUM_THREADS": str(max(1, threads // processes)),  # accelerate reads it too
    }


def _log_file():
    """The file this process's output goes to (a job's log under `gradual.logs.job_log`), or None (inherit)."""
    try:
        sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return sys.stdout


def _rank(spec: str) -> None:
    """A rank other than 0, in its own interpreter (see `_data_parallel`)."""
    pickle.loads(Path(spec).read_bytes()).run(evaluate=None)


def _rank_environment(rank: int, world: dict[str, str]) -> dict[str, str]:
    return world | {"RANK": str(rank), "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": world["WORLD_SIZE"]}


@contextmanager
def _as_rank(rank: int, world: dict[str, str], threads: int):
    """This process as `rank` of the job's process group, for the duration."""
    rank_env = _rank_environment(rank, world)
    saved = {name: os.environ.get(name) for name in rank_env}
    os.environ.update(rank_env)
    torch.set_num_threads(int(world["OMP_NUM_THREADS"]))
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _encode_epoch(tokenizer, pairs: pd.DataFrame, epoch: int, max_length: int) -> list[dict[str, torch.Tensor]]:
    missing = [c for c in ("prompt", "target") if c not in pairs.columns]
    if missing:
        raise InputError(f"training examples of epoch {epoch} lack the column(s) {missing}")
    encoded = [encode_example(tokenizer, p, t) for p, t in zip(pairs["prompt"], pairs["target"])]
    kept = [e for e in encoded if len(e["input_ids"]) <= max_length]
    if len(kept) < len(encoded):
        dropped = len(encoded) - len(kept)
        log.warning(
            "epoch %d: dropped %d of %d examples longer than %d tokens", epoch, dropped, len(encoded), max_length
        )
    if not kept:
        raise InputError(f"epoch {epoch} has no training examples of at most {max_length} tokens")
    return kept


def training_key(
    settings: TrainingSettings,
    examples_by_epoch: dict[int, pd.DataFrame],
    init_adapter: str | Path | None,
    context: dict[str, str],
) -> dict[str, str]:
    """Digests of everything that shapes the trained adapter and its per-epoch scores. The split that
    picks the best epoch is left out: which splits each epoch is scored on is in the caller's context, so
    a change of selection that scores the same splits reuses the checkpoints."""
    shaping = {name: value for name, value in asdict(settings).items() if name != "selection_split"}
    examples = {k: pairs[["prompt", "target"]] for k, pairs in sorted(examples_by_epoch.items())}
    return {
        "settings": digest(shaping),
        "examples": digest({str(k): frame for k, frame in examples.items()}),
        "init_adapter": folder_digest(init_adapter) if init_adapter is not None else "none",
        "content": CHECKPOINT_CONTENT,
        **{name: context[name] for name in sorted(context)},
    }


def _resume_point(checkpoint_dir: Path, epochs: int, key: dict[str, str]) -> int:
    """The last epoch k such that epochs 1..k are complete and trained with `key`. Unfinished
    folders (the Trainer's checkpoint or an epoch folder being completed, an epoch without `complete`)
    are removed; so are all checkpoints when they belong to another training."""
    for folder in checkpoint_dir.iterdir():
        unfinished = folder.name.startswith(("checkpoint-", ".epoch-")) or (
            folder.name.startswith("epoch-") and not (folder / COMPLETE).is_file()
        )
        if folder.is_dir() and unfinished:
            log.info("removing unfinished checkpoint %s", folder)
            shutil.rmtree(folder)
    complete = sorted(int(p.name.removeprefix("epoch-")) for p in checkpoint_dir.glob("epoch-*"))
    if not complete:
        return 0
    saved_key = _saved_key(checkpoint_dir / f"epoch-{complete[-1]}")
    changed = [name for name in sorted(key.keys() | saved_key.keys()) if key.get(name) != saved_key.get(name)]
    if changed:
        log.warning(
            "checkpoints in %s belong to another training (changed: %s); starting over",
            checkpoint_dir,
            ", ".join(changed),
        )
        for folder in checkpoint_dir.glob("epoch-*"):
            shutil.rmtree(folder)
        return 0
    done = 0
    while done + 1 in complete and done < epochs:
        done += 1
    for epoch in complete:  # after a gap: trained again, so their folders go
        if epoch > done:
            shutil.rmtree(checkpoint_dir / f"epoch-{epoch}")
    if done:
        log.info("epochs 1-%d already trained with the same key in %s", done, checkpoint_dir)
    return done


def _saved_key(folder: Path) -> dict[str, str]:
    """The key an epoch was trained with; checkpoints from before keys were kept have none."""
    path = folder / KEY
    return json.loads(path.read_text()) if path.is_file() else {"key": "missing"}


def _plain(value):
    """A JSON-safe scalar (evaluate may return numpy or torch numbers)."""
    return value.item() if hasattr(value, "item") else value


def _metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows with METRIC_COLUMNS first; a column that checkpoints from before it existed lack is
    empty (NaN) for their epochs."""
    frame = pd.DataFrame(rows)
    extra = [c for c in frame.columns if c not in METRIC_COLUMNS]
    return frame.reindex(columns=METRIC_COLUMNS + extra).astype({"epoch": int})
