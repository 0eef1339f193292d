# Helpers only: config validation, the path layout, wildcard constraints and input functions.

import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The library is importable without an install step: here from src/, and in scripts (also in
# conda environments) through the link scripts/gradual -> ../src/gradual, as Snakemake puts a
# script's own folder on its import path.
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from gradual import SAMPLE_DATASET
from gradual.config import check_config
from gradual.dataset import SPLITS
from gradual.paths import Layout
from gradual.prompts import PromptFormat
from gradual.stages import BASE, STATE_PATTERN, TRAINED_STATE_PATTERN, parse_stage, trained_states


check_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml", set_default=True)
PromptFormat(**config["prompt"])  # a bad template stops the run here, before any job
PATHS = Layout.for_config(config)
DATASET = config["dataset"]
METHOD = config["method"]
MODEL_DIR = PATHS.model(config["model"]["name"])
GENERATION_ENV = "../envs/vllm.yaml" if config["generation"]["backend"] == "vllm" else "../envs/gradual.yaml"
DETECTION = config["detection"]
PROMPT_SETS = {
    "detect": {"n_prompts": DETECTION["n_prompts"], "seed": DETECTION["seed"]},
    "retest": {"n_prompts": DETECTION["n_prompts"], "seed": DETECTION["retest_seed"]},
    "eval": {"n_prompts": 1, "seed": config["evaluation"]["prompt_seed"]},
}
TRAINED = trained_states(METHOD["rounds"], METHOD["strategies"])
SWEEP = [f"sweep-e{epochs}" for epochs in METHOD["epoch_sweep"]]
MAIN_STRATEGY = 5 if 5 in METHOD["strategies"] else METHOD["strategies"][0]


wildcard_constraints:
    split="|".join(SPLITS),
    prompt_set="|".join(PROMPT_SETS),
    state=STATE_PATTERN,
    shard=r"\d+",


def dataset_inputs(wildcards):
    """The files prepare_dataset reads, so Snakemake reruns it when they change."""
    source = DATASET["source"]
    if source == "download":
        return {"downloaded": PATHS.downloaded_dataset(DATASET["name"])}
    if source == "directory":
        return {"directory": DATASET["directory"]}
    if source == "files":
        extra = {"templates": DATASET["templates"]} if DATASET["templates"] else {}
        return {**DATASET["files"], **extra}
    return {"directory": str(SAMPLE_DATASET)}


def generation_inputs(wildcards):
    inputs = {
        "prompts": PATHS.prompts(wildcards.prompt_set, wildcards.split),
        "questions": PATHS.questions(wildcards.split),
        "model": MODEL_DIR,
    }
    if wildcards.state != BASE:
        inputs["adapter"] = PATHS.adapter(wildcards.state)
    return inputs


def sampling_mode(wildcards):
    """Which prompts get sampled answers: none for evaluation, and none after fine-tuning unless
    method.redetect_sampling (the paper merges WeaklyKnown and Unknown there)."""
    if wildcards.prompt_set == "eval" or (wildcards.state != BASE and not METHOD["redetect_sampling"]):
        return "off"
    return "all" if config["generation"]["sample_all"] else "never_right"


def generation_shards(state, prompt_set, split):
    return [PATHS.generations(state, prompt_set, split, shard) for shard in range(config["generation"]["shards"])]


def training_pairs_inputs(wildcards):
    stage = parse_stage(wildcards.state)
    inputs = {"questions": PATHS.questions("train"), "origin": PATHS.categories(BASE, "detect", "train")}
    if stage.number > 1:
        inputs["current"] = PATHS.categories(stage.previous, "detect", "train")
    return inputs


def finetune_inputs(wildcards):
    stage = parse_stage(wildcards.state)
    inputs = {
        "pairs": PATHS.training_pairs(wildcards.state),
        "replay_pool": PATHS.replay_pool(wildcards.state),
        "model": MODEL_DIR,
        **{f"{split}_prompts": PATHS.prompts("eval", split) for split in ("dev", "test")},
        **{f"{split}_questions": PATHS.questions(split) for split in ("dev", "test")},
    }
    if stage.number > 1:
        inputs["init_adapter"] = PATHS.adapter(stage.previous)
    return inputs


def stage_settings(wildcards):
    return config["training"]["stage1" if parse_stage(wildcards.state).number == 1 else "stage2"]


def training_epochs(wildcards):
    return parse_stage(wildcards.state).epochs or config["training"]["epochs"]


def table_inputs(wildcards):
    states = [BASE, *TRAINED, *SWEEP]
    inputs = {
        "categories": [PATHS.categories(state, "detect", "train") for state in [BASE, *TRAINED]],
        "retest": PATHS.categories(BASE, "retest", "train"),
        "evaluation": [PATHS.evaluation(state, "test") for state in states],
        "metrics": [PATHS.training_metrics(state) for state in [*TRAINED, *SWEEP]],
    }
    if "test" in DETECTION["splits"]:
        inputs["test_categories"] = PATHS.categories(BASE, "detect", "test")
    return inputs


TABLES = [
    "table3-transitions-stage1",
    "table4-transitions-retest",
    "table3-minus-table4",
    "table7-accuracy",
    "table10-category-counts",
    "table11-rounds",
    "training-metrics",
]
TABLES += ["table8-strategies", "table12-transitions-stage2"] if METHOD["rounds"] > 1 else []
TABLES += ["table9-accuracy-by-category"] if "test" in DETECTION["splits"] else []
TABLES += ["table6-epoch-sweep"] if SWEEP else []


def final_outputs():
    categories = [
        PATHS.category_counts(state, "detect", split, ext)
        for state in [BASE, *TRAINED]
        for split in DETECTION["splits"]
        for ext in ("parquet", "md")
    ]
    tables = [PATHS.table(name, ext) for name in TABLES for ext in ("parquet", "md")]
    return categories + tables
