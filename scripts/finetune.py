"""LoRA fine-tuning of one stage: per-epoch checkpoints and accuracy, resume, best epoch kept."""

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import torch

from gradual.accelerator import device_and_dtype, dtype_name, visible_gpus
from gradual.detection import generate_answers, gold_answers, score
from gradual.fingerprint import digest
from gradual.generation import GenerationSettings
from gradual.generation.hf import HFBackend
from gradual.io import write_parquet
from gradual.logs import job_log
from gradual.prompts import PromptFormat
from gradual.shared import folder_of
from gradual.training import (
    DEV_CORRECT,
    TrainingSettings,
    best_adapter,
    dev_scores,
    finetune,
    select_best_epoch,
    training_examples,
)

with job_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    params, inputs = snakemake.params, snakemake.input
    settings = TrainingSettings.from_config(params.training)
    prompt_format = PromptFormat(**params.prompt_format)
    examples = pd.read_parquet(inputs.examples)
    if examples.empty:
        raise SystemExit(f"no training pairs for {snakemake.wildcards.state}: nothing to fine-tune on")

    def epoch_pairs(epoch: int) -> pd.DataFrame:
        return training_examples(examples[examples["epoch"] == epoch], prompt_format)

    evaluation_sets = {
        split: (
            pd.read_parquet(inputs[f"{split}_prompts"], columns=["question_id", "prompt_index", "prompt"]),
            pd.read_parquet(inputs[f"{split}_questions"], columns=["question_id", "answers"]),
        )
        for split in params.epoch_scoring
    }
    generation = GenerationSettings.from_config(params.evaluation)

    def evaluate(model, tokenizer) -> dict[str, float]:
        """Greedy accuracy on the fixed evaluation prompts, scored as every other generation is."""
        backend = HFBackend.from_model(model, tokenizer, generation)
        scores = {}
        for split, (prompts, questions) in evaluation_sets.items():
            answers = generate_answers(backend, prompts, generation.seed, sampling="off")
            correct = score(answers, gold_answers(questions, params.scoring["answers"]), params.scoring["mode"])
            scores[f"{split}_accuracy"] = float(correct.mean()) if len(correct) else 0.0
            if split == "dev":  # per question, in the prompts' order: how sure the choice of epoch is
                scores[DEV_CORRECT] = correct.astype(int).tolist()
        return scores

    # What the checkpoints depend on besides the training itself: a change to either retrains.
    context = {
        "model": digest(json.loads(Path(inputs.model).read_text())),
        "evaluation": digest({"sets": evaluation_sets, "settings": params.evaluation, "scoring": params.scoring}),
    }
    init_adapter = inputs.get("init_adapter")
    model = folder_of(inputs.model)
    # Data parallel over the job's GPUs, one process each; on the CPU, or with one GPU, one process.
    gpus = int(snakemake.resources.get("gpu", 0))
    visible = torch.cuda.device_count()  # 0 without CUDA
    if 0 < visible < gpus:
        logging.warning("the job asked for %d GPUs and sees %d: training on %d", gpus, visible, visible)
    processes = max(1, min(gpus, visible))
    metrics = finetune(model, epoch_pairs, settings, params.checkpoints, evaluate, init_adapter, context, processes)
    best_epoch = select_best_epoch(metrics, settings.selection_split)
    logging.info("best epoch by %s accuracy: %d", settings.selection_split, best_epoch)
    shutil.copytree(best_adapter(params.checkpoints, metrics, settings.selection_split), snakemake.output.adapter)
    dev_ids = evaluation_sets["dev"][0]["question_id"].tolist()
    write_parquet(dev_scores(metrics, dev_ids), snakemake.output.dev_scores)
    metrics = metrics.drop(columns=DEV_CORRECT).assign(best=metrics["epoch"] == best_epoch)
    device, dtype = device_and_dtype(settings.dtype)
    ran_on = {"device": device, "dtype": dtype_name(dtype), "gpus": visible_gpus()}
    write_parquet(metrics, snakemake.output.metrics, metadata=ran_on)
