# Helpers only: config validation, the path layout, wildcard constraints, input functions, and
# the config values each rule sees (only those it uses, so an edit reruns only what it changes).

import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The library is importable without an install step: here from src/, and in scripts where the
# package is not installed (conda environments) through the link scripts/gradual -> ../src/gradual,
# as Snakemake appends a script's own folder to its import path (an installed package comes first).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from gradual import SAMPLE_DATASET
from gradual.config import check_config
from gradual.dataset import SPLITS
from gradual.download import dataset_spec
from gradual.detection import sampling_mode, shard_count
from gradual.method import get_strategy
from gradual.models import model_spec
from gradual.paths import Layout
from gradual.prompts import PROMPT_SET_KINDS, PROMPT_SET_PATTERN, PromptFormat, prompt_set_of, prompt_set_seed
from gradual.provenance import project_commit
from gradual.report import figure_names
from gradual.shared import shared_id
from gradual.stages import BASE, STATE_PATTERN, TRAINED_STATE_PATTERN, epoch_splits, parse_stage, training_seed
from gradual.tables import RunShape, table_names

check_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml", set_default=True)
PromptFormat(**config["prompt"])  # a bad template stops the run here, before any job
PATHS = Layout.for_config(config)
DATASET = config["dataset"]
METHOD = config["method"]
GENERATION = config["generation"]
TRAINING = config["training"]
MATCHING = config["matching"]
MODEL_SPEC = model_spec(**{key: config["model"][key] for key in ("source", "file", "revision", "dtype")})
MODEL_ID = shared_id(config["model"]["name"], MODEL_SPEC)
DOWNLOAD_SPEC = dataset_spec(**DATASET["download"])
DATASET_ID = shared_id(DATASET["name"], DOWNLOAD_SPEC)
DETECTION = config["detection"]
PROMPT_SEEDS = {
    "detect": DETECTION["seed"],
    "retest": DETECTION["retest_seed"],
    "eval": config["evaluation"]["prompt_seed"],
}
SHAPE = RunShape.from_config(config)
TRAINED = SHAPE.trained
SWEEP = SHAPE.sweep
TABLE_NAMES = table_names(SHAPE)
# The category counts per relation the report plots: the untuned model and each round.
REPORT_STATES = {"untuned": BASE} | {f"round {n}": state for n, state in enumerate(SHAPE.main, 1)}


wildcard_constraints:
    split="|".join(SPLITS),
    prompt_set="|".join(PROMPT_SET_KINDS),
    state=STATE_PATTERN,
    shard=r"\d+",


def pick(section: dict, *keys: str) -> dict:
    """Only `keys` of a config section: a rule's params are what it uses, so no other key reruns it."""
    return {key: section[key] for key in keys}


def workflow_relative(path) -> str:
    """A path inside the working copy as a relative one, so a moved copy records the same inputs."""
    return os.path.relpath(path)


def gpu_job(gpus: int) -> dict:
    """The resources of a job on `gpus` GPUs, all held by its one task, so the script runs once and
    sees them all. SLURM's executor plugin asks one task per GPU (--ntasks-per-gpu) for a GPU job with
    `tasks` set, and some versions by default (its issues 316, 459: the script ran once per GPU, on
    one each); `tasks_per_gpu=0` asks for none, whatever the profile's `tasks` (the plugin's fix of 316)."""
    return {"gpu": gpus, "tasks_per_gpu": 0}


def dataset_inputs(wildcards):
    """The files prepare_dataset reads, so Snakemake reruns it when they change."""
    source = DATASET["source"]
    if source == "download":
        return {"downloaded": ancient(PATHS.dataset_manifest(DATASET_ID))}
    if source == "directory":
        return {"directory": DATASET["directory"]}
    if source == "files":
        extra = {"templates": DATASET["templates"]} if DATASET["templates"] else {}
        return {**DATASET["files"], **extra}
    return {"directory": workflow_relative(SAMPLE_DATASET)}


def model_input():
    """The run's model manifest. Ancient: its path changes with the model spec, so only a spec
    edit reruns the model's users, not a rewrite of the same manifest."""
    return ancient(PATHS.model_manifest(MODEL_ID))


def sampling(wildcards) -> str:
    return sampling_mode(
        wildcards.prompt_set, wildcards.state != BASE, METHOD["redetect_sampling"], GENERATION["sample_all"]
    )


def scoring(split: str) -> dict:
    """How a split's answers are scored: the matcher, and which gold answers count (any for train,
    `matching.test_answers` for the held-out questions, as the paper scores its test set)."""
    return {"mode": MATCHING["mode"], "answers": "any" if split == "train" else MATCHING["test_answers"]}


def generation_settings(wildcards) -> dict:
    """The generation values a job uses: sampling values only where it samples, the matcher only
    where it picks which questions to sample, engine options only for the backend that takes them."""
    settings = pick(GENERATION, "backend", "max_new_tokens") | {"dtype": config["model"]["compute_dtype"]}
    settings["shards"] = shard_count(GENERATION["shards"], wildcards.prompt_set, wildcards.split)
    mode = sampling(wildcards)
    settings["sampling"] = mode
    if mode != "off":
        settings |= pick(GENERATION, "n_samples", "temperature", "top_k", "seed", "sample_until_correct")
    if mode == "never_right":
        settings["scoring"] = scoring(wildcards.split)
    if GENERATION["backend"] != "vllm":
        settings["batch_size"] = GENERATION["batch_size"]
    if GENERATION["backend"] != "hf":
        settings |= pick(GENERATION, "vllm", "batch_invariant")
    return settings


def prompt_set_draw(wildcards) -> dict:
    """How a prompt set is drawn: its size, exemplar seed and pool (the evaluation's: one prompt, no pool)."""
    kind = wildcards.prompt_set.partition("-")[0]
    return {
        "n_prompts": 1 if kind == "eval" else DETECTION["n_prompts"],
        "seed": prompt_set_seed(wildcards.prompt_set, PROMPT_SEEDS),
        "exemplar_pool": None if kind == "eval" else DETECTION["exemplar_pool"],
    }


def prompts_of(state: str, kind: str, split: str) -> str:
    return PATHS.prompts(prompt_set_of(state, kind, METHOD["redetect_prompts"]), split)


def generation_inputs(wildcards):
    inputs = {
        "prompts": prompts_of(wildcards.state, wildcards.prompt_set, wildcards.split),
        "questions": PATHS.questions(wildcards.split),
        "model": model_input(),
    }
    if wildcards.state != BASE:
        inputs["adapter"] = PATHS.adapter(wildcards.state)
    return inputs


def generation_shards(state, prompt_set, split):
    count = shard_count(GENERATION["shards"], prompt_set, split)
    return [PATHS.generations(state, prompt_set, split, shard) for shard in range(count)]


def training_pairs_inputs(wildcards):
    stage = parse_stage(wildcards.state)
    inputs = {"questions": PATHS.questions("train"), "origin": PATHS.categories(BASE, "detect", "train")}
    if stage.number > 1:
        inputs["current"] = PATHS.categories(stage.previous, "detect", "train")
    return inputs


def epoch_scoring(wildcards) -> list[str]:
    """The held-out splits a fine-tuning scores after every epoch (gradual.stages.epoch_splits)."""
    return epoch_splits(TRAINING["selection_split"], wildcards.state in SHAPE.sweep_states.values())


def finetune_inputs(wildcards):
    stage = parse_stage(wildcards.state)
    splits = epoch_scoring(wildcards)
    inputs = {
        "examples": PATHS.trained_examples(wildcards.state),
        "model": model_input(),
        **{f"{split}_prompts": PATHS.prompts("eval", split) for split in splits},
        **{f"{split}_questions": PATHS.questions(split) for split in splits},
    }
    if stage.number > 1:
        inputs["init_adapter"] = PATHS.adapter(stage.previous)
    return inputs


def training_settings(wildcards) -> dict:
    """The training values of one state: its stage's epochs, rate and decay (the sweep has its own
    epochs) and its training seed (the run's first, or the one its name carries)."""
    stage = parse_stage(wildcards.state)
    settings = pick(
        TRAINING, "batch_size", "micro_batch_size", "lora_rank", "lora_alpha", "lora_dropout", "target_modules",
        "warmup_ratio", "max_length", "selection_split",
    )  # fmt: skip
    settings |= TRAINING["stage1" if stage.number == 1 else "stage2"]
    settings["epochs"] = stage.epochs or settings["epochs"]
    settings["seed"] = training_seed(wildcards.state, TRAINING["seeds"])
    settings["dtype"] = config["model"]["compute_dtype"]
    return settings


def training_data_settings(wildcards) -> dict:
    """What a stage's examples depend on besides the categories: its epochs and seed, the replay
    ratio where it replays, and for a control the ratio of strategy 5 it matches."""
    stage = parse_stage(wildcards.state)
    settings = {key: value for key, value in training_settings(wildcards).items() if key in ("epochs", "seed")}
    replays = stage.strategy is not None and get_strategy(stage.strategy).replay
    settings["replay_ratio"] = METHOD["replay_ratio"] if replays else 0.0
    if stage.control is not None:
        settings["matched_replay_ratio"] = METHOD["replay_ratio"]
    return settings


def table_inputs(wildcards):
    paths = {
        "categories": lambda state: PATHS.categories(state, "detect", "train"),
        "retest": lambda state: PATHS.categories(state, "retest", "train"),
        "evaluation": lambda state: PATHS.evaluation(state, "test"),
        "metrics": PATHS.training_metrics,
        "dev_scores": PATHS.dev_scores,
        "training": PATHS.trained_examples,
    }
    states = SHAPE.input_states()
    inputs = {kind: [paths[kind](state) for state in states[kind]] for kind in paths}
    inputs |= {f"greedy_{state}": generation_shards(state, "detect", "train") for state in states["greedy"]}
    inputs["questions"] = PATHS.questions("train")
    if SHAPE.detects_test:
        inputs["test_categories"] = PATHS.categories(BASE, "detect", "test")
    return inputs


def table_outputs():
    """Parquet and Markdown per table; the Markdown is marked for `snakemake --report`."""
    caption = "../report/table.rst"
    markdown = [report(PATHS.table(name, "md"), caption=caption, category="Tables") for name in TABLE_NAMES]
    return [PATHS.table(name, "parquet") for name in TABLE_NAMES] + markdown


def detected_splits(state: str) -> list[str]:
    """The splits a state's categories are made for: those of `detection.splits` for the untuned
    model, train only for a trained state (no table reads a trained state's test categories)."""
    return DETECTION["splits"] if state == BASE else ["train"]


def generation_sets() -> list[tuple[str, str, str]]:
    """Every (state, prompt set, split) the run generates answers for: detection and retest of the
    untuned model, re-detection of the trained states, and every state's evaluation."""
    detections = [(state, "detect", split) for state in [BASE, *TRAINED] for split in detected_splits(state)]
    evaluations = [(state, "eval", "test") for state in [BASE, *TRAINED, *SWEEP]]
    retests = [(state, "retest", "train") for state in SHAPE.retested]
    return [*detections, *retests, *evaluations]


def all_generations():
    """Every generation shard the run makes."""
    return [path for sets in generation_sets() for path in generation_shards(*sets)]


def job_benchmarks() -> dict[str, str]:
    """The benchmark file of every job of the run but the report's own, and its rule: the report sums
    them per rule, declared, so that it reads only what it asks for and sums a job run again anew."""
    sets = generation_sets()
    drawn = {(prompt_set_of(state, kind, METHOD["redetect_prompts"]), split) for state, kind, split in sets}
    drawn.add(("eval", "dev"))  # every fine-tuning scores dev after each epoch
    jobs = {
        "download_dataset": [{"name": DATASET_ID}] if DATASET["source"] == "download" else [],
        "prepare_dataset": [{}],
        "prepare_model": [{"model": MODEL_ID}],
        "sample_prompts": [{"prompt_set": prompt_set, "split": split} for prompt_set, split in sorted(drawn)],
        "generate": [
            {"state": state, "prompt_set": kind, "split": split, "shard": shard}
            for state, kind, split in sets
            for shard in range(shard_count(GENERATION["shards"], kind, split))
        ],
        "assign_categories": [{"state": s, "prompt_set": k, "split": sp} for s, k, sp in sets if k != "eval"],
        "score_evaluation": [{"state": s, "split": sp} for s, k, sp in sets if k == "eval"],
        "training_pairs": [{"state": state} for state in [*TRAINED, *SWEEP]],
        "finetune": [{"state": state} for state in [*TRAINED, *SWEEP]],
        "tables": [{}],
        "provenance": [{}],
    }
    return {getattr(rules, rule).benchmark.format(**job): rule for rule, each in jobs.items() for job in each}


def category_outputs(states) -> list[str]:
    """The category counts per relation (Table 2 for the untuned model) of `states`, in each split they get."""
    return [
        PATHS.category_counts(state, "detect", split, ext)
        for state in states
        for split in detected_splits(state)
        for ext in ("parquet", "md")
    ]


def final_outputs():
    categories = category_outputs([BASE, *TRAINED])
    graph = [PATHS.graph("edges"), PATHS.graph("nodes")]
    tables = [PATHS.table(name, ext) for name in TABLE_NAMES for ext in ("parquet", "md")]
    return categories + tables + graph + [PATHS.provenance(), PATHS.report_page()]
