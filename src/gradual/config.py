"""Config checks that name the offending key in one line, before Snakemake fills in defaults."""

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from gradual.errors import InputError


# Keys an earlier version read, and what replaced them: a config written for it gets told.
RENAMED = {
    ("training", "seed"): "renamed training.seeds, a list of training seeds (training: {seeds: [0]})",
    ("generation", "vllm", "dtype"): "set model.compute_dtype instead, the dtype of both backends and of training",
    ("evaluation", "splits"): "removed (it was read nowhere): dev and test always get the fixed evaluation prompts",
}


def check_config(config: dict, schema_path: str | Path) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    lines = [f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]
    lines += [f"  {'.'.join(key)}: {hint}" for key, hint in RENAMED.items() if _has_key(config, key)]
    if lines:
        raise InputError("invalid config:\n" + "\n".join(lines))


def _has_key(config: dict, key: tuple[str, ...]) -> bool:
    for part in key:
        if not isinstance(config, dict) or part not in config:
            return False
        config = config[part]
    return True
