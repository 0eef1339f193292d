"""LoRA fine-tuning in epochs, with a checkpoint after every epoch and resume after a killed job.

Each example is a prompt (the question as the generation backend sees it, zero exemplars)
and a target (the answer line): the loss covers the target tokens only. Every epoch draws its
examples from a caller's hook, so a stage can mix in a fresh replay draw each epoch. After each
epoch the caller's `evaluate` measures dev accuracy, and test accuracy where something reads it per
epoch (`gradual.stages.epoch_splits`); the epoch that is best on the configured split is the one
the later stages use.

A checkpoint `checkpoint_dir/epoch-{k}/` holds `adapter/` (PEFT format, loadable by
`PeftModel.from_pretrained` and vLLM), `state.pt` (optimizer, scheduler, step, settings),
`metrics.json` (that epoch's row), `key.json` (what the training was, see `training_key`) and,
last, an empty `complete`. It is written into a hidden folder and renamed into place, so a
folder without `complete` is never a finished epoch.
"""

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from gradual.accelerator import DTYPES, device_and_dtype, dtype_name
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
# What a checkpoint's metrics hold; in the key, so checkpoints made before they held DEV_CORRECT
# are trained again rather than resumed without it.
CHECKPOINT_CONTENT = "metrics with per-question dev scores"
COMPLETE = "complete"
KEY = "key.json"

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


def length_grouped(step_examples: list[dict[str, torch.Tensor]], micro_batch_size: int) -> list[list[dict]]:
    """One optimizer step's examples sorted by length and cut into micro batches, so a micro batch
    pads its short examples only up to others of about their length, not to the step's longest.
    The step's gradient does not depend on the grouping (see `accumulate_gradients`)."""
    ordered = sorted(step_examples, key=lambda example: len(example["input_ids"]))
    return [ordered[start : start + micro_batch_size] for start in range(0, len(ordered), micro_batch_size)]


class StepTotals(NamedTuple):
    loss_sum: float  # cross-entropy summed over the step's answer tokens
    answer_tokens: int
    tokens: int  # prompt and answer tokens, padding not counted


def accumulate_gradients(model, micro_batches: list[list[dict]], pad_id: int, device: torch.device) -> StepTotals:
    """Backward pass of one optimizer step, micro batch by micro batch (the optimizer step is the
    caller's). Each micro batch adds its summed token loss divided by the step's answer-token count,
    so the accumulated gradient is that of the mean over the step's answer tokens, however the
    examples are split into micro batches and in whatever order."""
    examples = [example for micro in micro_batches for example in micro]
    answer_tokens = sum(int((example["labels"] != -100).sum()) for example in examples)
    loss_sum = 0.0
    for micro in micro_batches:
        batch = {name: tensor.to(device) for name, tensor in collate(micro, pad_id).items()}
        token_loss = _summed_token_loss(model, batch)
        (token_loss / answer_tokens).backward()
        loss_sum += token_loss.item()
    return StepTotals(loss_sum, answer_tokens, sum(len(example["input_ids"]) for example in examples))


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
    return Path(checkpoint_dir) / f"epoch-{select_best_epoch(metrics, selection_split)}" / "adapter"


def finetune(
    model_dir: str | Path,
    epoch_pairs: Callable[[int], pd.DataFrame],
    settings: TrainingSettings,
    checkpoint_dir: str | Path,
    evaluate: Callable[..., dict[str, float]],
    init_adapter: str | Path | None = None,
    context: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Train a LoRA adapter for `settings.epochs` epochs; returns one metrics row per epoch
    (the METRIC_COLUMNS, then any other key `evaluate` returns).

    `epoch_pairs(k)` gives epoch k's examples (question_id, prompt, target); it is called once for
    every epoch 1..epochs before training, since the schedule's length depends on all of them.
    Examples whose prompt + target exceed `max_length` tokens are dropped (the count is logged).

    Loss scaling: one optimizer step per `batch_size` examples, the loss of a step being the mean
    over the answer tokens of all its examples (each micro batch contributes its summed token loss
    divided by the step's answer-token count), so micro batching does not change the gradient. The
    shuffle decides which examples make a step; within a step they are grouped by length into micro
    batches (`length_grouped`), which spares padding and leaves the step's gradient as it is.
    `train_loss` is the same token mean over the whole epoch. `seconds` is the epoch's wall time,
    evaluation included; `train_tokens_per_second` counts the prompt and answer tokens (not padding)
    per second of training alone (forward, backward and optimizer steps, no evaluation).

    Checkpoints in `checkpoint_dir` are resumed only when they belong to exactly this training:
    the same key (`training_key`: settings, every epoch's examples, starting adapter, and the
    caller's `context`, digests of what `evaluate` and the model depend on). Then the newest
    complete epoch's adapter, optimizer and scheduler are loaded and only the later epochs are
    trained; otherwise the checkpoints are removed, the log says which parts of the key changed,
    and training starts over.
    """
    from peft import PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, get_cosine_schedule_with_warmup

    checkpoint_dir = Path(checkpoint_dir)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    device, dtype = device_and_dtype(settings.dtype)
    settings = replace(settings, dtype=dtype_name(dtype))  # the key holds the dtype `auto` stood for here
    examples_by_epoch = {k: epoch_pairs(k) for k in range(1, settings.epochs + 1)}
    key = training_key(settings, examples_by_epoch, init_adapter, context or {})
    done, state = _resume_point(checkpoint_dir, settings.epochs, key)
    rows = [json.loads((checkpoint_dir / f"epoch-{k}" / "metrics.json").read_text()) for k in range(1, done + 1)]
    if done == settings.epochs:
        log.info("all %d epochs already trained in %s", settings.epochs, checkpoint_dir)
        return _metrics_frame(rows)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    epochs = {k: _encode_epoch(tokenizer, pairs, k, settings.max_length) for k, pairs in examples_by_epoch.items()}
    steps = {k: math.ceil(len(examples) / settings.batch_size) for k, examples in epochs.items()}
    total_steps = sum(steps.values())

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    torch.manual_seed(stable_seed(settings.seed, "init"))
    if done:
        log.info("resuming after epoch %d", done)
        model = PeftModel.from_pretrained(base, str(checkpoint_dir / f"epoch-{done}" / "adapter"), is_trainable=True)
    elif init_adapter is not None:
        log.info("starting from adapter %s", init_adapter)
        model = PeftModel.from_pretrained(base, str(init_adapter), is_trainable=True)
    else:
        model = get_peft_model(base, settings.lora_config())
    trainable = [p for p in model.parameters() if p.requires_grad]
    log.info("%d trainable parameters on %s, model in %s", sum(p.numel() for p in trainable), device, settings.dtype)

    optimizer = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, round(settings.warmup_ratio * total_steps), total_steps)
    global_step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        global_step = state["global_step"]

    model.train()
    remaining = sum(steps[k] for k in range(done + 1, settings.epochs + 1))
    with tqdm(total=remaining, desc="training", unit="step", mininterval=5) as progress:
        for epoch in range(done + 1, settings.epochs + 1):
            started = time.monotonic()
            torch.manual_seed(stable_seed(settings.seed, "dropout", epoch))  # a resumed run draws as an unbroken one
            shuffle = np.random.default_rng(stable_seed(settings.seed, "train-epoch", epoch))
            examples = [epochs[epoch][i] for i in shuffle.permutation(len(epochs[epoch]))]
            loss_sum, answer_tokens, tokens = 0.0, 0, 0
            for start in range(0, len(examples), settings.batch_size):
                micro_batches = length_grouped(examples[start : start + settings.batch_size], settings.micro_batch_size)
                step = accumulate_gradients(model, micro_batches, tokenizer.pad_token_id, device)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                global_step += 1
                loss_sum += step.loss_sum
                answer_tokens += step.answer_tokens
                tokens += step.tokens
                progress.update(1)
                progress.set_postfix(epoch=epoch, loss=f"{loss_sum / max(answer_tokens, 1):.4f}", refresh=False)
            training_seconds = time.monotonic() - started

            model.eval()
            scores = evaluate(model, tokenizer)
            model.train()
            row = {
                "epoch": epoch,
                "train_loss": loss_sum / answer_tokens,
                "dev_accuracy": float(scores["dev_accuracy"]),
                "test_accuracy": float(scores.get("test_accuracy", math.nan)),  # NaN: not scored per epoch
                "seconds": time.monotonic() - started,
                "train_tokens_per_second": tokens / training_seconds,
            }
            row.update({name: _plain(value) for name, value in scores.items() if name not in row})
            _save_epoch(checkpoint_dir, epoch, model, optimizer, scheduler, global_step, settings, key, row)
            rows.append(row)
            accuracies = ", ".join(
                f"{split} accuracy {row[f'{split}_accuracy']:.4f}" for split in SPLITS if f"{split}_accuracy" in scores
            )
            log.info(
                "epoch %d: train loss %.4f, %s, %.1f s, %.0f training tokens/s",
                epoch, row["train_loss"], accuracies, row["seconds"], row["train_tokens_per_second"],
            )  # fmt: skip
    return _metrics_frame(rows)


def _summed_token_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy summed over the answer tokens of a micro batch (each label predicted from the
    tokens before it)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logits = logits[:, :-1, :].float()
    labels = batch["labels"][:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum")


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


def _resume_point(checkpoint_dir: Path, epochs: int, key: dict[str, str]) -> tuple[int, dict | None]:
    """The last epoch k such that epochs 1..k are complete and trained with `key`, and its training
    state (None when k = 0). Unfinished folders (no `complete` marker, or a write interrupted before
    its rename) are removed; so are all checkpoints when they belong to another training."""
    for folder in checkpoint_dir.iterdir():
        unfinished = folder.name.startswith(".epoch-") or (
            folder.name.startswith("epoch-") and not (folder / COMPLETE).is_file()
        )
        if folder.is_dir() and unfinished:
            log.info("removing unfinished checkpoint %s", folder)
            shutil.rmtree(folder)
    complete = sorted(int(p.name.removeprefix("epoch-")) for p in checkpoint_dir.glob("epoch-*"))
    if not complete:
        return 0, None
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
        return 0, None
    done = 0
    while done + 1 in complete and done < epochs:
        done += 1
    if done == 0:
        return 0, None
    log.info("epochs 1-%d already trained with the same key in %s", done, checkpoint_dir)
    state = torch.load(checkpoint_dir / f"epoch-{done}" / "state.pt", map_location="cpu", weights_only=True)
    return done, state


def _saved_key(folder: Path) -> dict[str, str]:
    """The key an epoch was trained with; checkpoints from before keys were kept have none."""
    path = folder / KEY
    return json.loads(path.read_text()) if path.is_file() else {"key": "missing"}


def _save_epoch(
    checkpoint_dir: Path, epoch: int, model, optimizer, scheduler, global_step: int, settings, key: dict, row: dict
) -> None:
    final = checkpoint_dir / f"epoch-{epoch}"
    partial = checkpoint_dir / f".epoch-{epoch}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    model.save_pretrained(partial / "adapter")
    state = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "global_step": global_step,
        "settings": asdict(settings),
    }
    torch.save(state, partial / "state.pt")
    (partial / "metrics.json").write_text(json.dumps(row, indent=2) + "\n")
    (partial / KEY).write_text(json.dumps(key, indent=2) + "\n")
    (partial / COMPLETE).touch()
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)


def _plain(value):
    """A JSON-safe scalar (evaluate may return numpy or torch numbers)."""
    return value.item() if hasattr(value, "item") else value


def _metrics_frame(rows: list[dict]) -> pd.DataFrame:
    """The rows with METRIC_COLUMNS first; a column that checkpoints from before it existed lack is
    empty (NaN) for their epochs."""
    frame = pd.DataFrame(rows)
    extra = [c for c in frame.columns if c not in METRIC_COLUMNS]
    return frame.reindex(columns=METRIC_COLUMNS + extra).astype({"epoch": int})
