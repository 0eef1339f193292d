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


check_config(config, Path(workflow.basedir) / "schemas" / "config.schema.yaml")
validate(config, schema="../schemas/config.schema.yaml", set_default=True)
PromptFormat(**config["prompt"])  # a bad template stops the run here, before any job
PATHS = Layout.for_config(config)
DATASET = config["dataset"]
MODEL_DIR = PATHS.model(config["model"]["name"])
GENERATION_ENV = "../envs/vllm.yaml" if config["generation"]["backend"] == "vllm" else "../envs/gradual.yaml"
PROMPT_SETS = {
    "detect": {"n_prompts": config["detection"]["n_prompts"], "seed": config["detection"]["seed"]},
    "eval": {"n_prompts": 1, "seed": config["evaluation"]["prompt_seed"]},
}


wildcard_constraints:
    split="|".join(SPLITS),
    prompt_set="|".join(PROMPT_SETS),
    state="base",
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


def generation_shards(wildcards):
    return [
        PATHS.generations(wildcards.state, "detect", wildcards.split, shard)
        for shard in range(config["generation"]["shards"])
    ]


def final_outputs():
    categories = [
        path
        for split in config["detection"]["splits"]
        for path in (
            PATHS.categories("base", split),
            PATHS.category_counts("base", split, "parquet"),
            PATHS.category_counts("base", split, "md"),
        )
    ]
    prompts = [PATHS.prompts("eval", split) for split in config["evaluation"]["splits"]]
    return categories + prompts
