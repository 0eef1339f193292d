"""The config schema, the one source of every config default, and checks that name the offending key.

`schemas/config.schema.yaml` holds each key's type, default and description. The workflow fills
a run's config from it (Snakemake's `validate` with `set_default`); the library reads the same
defaults as `DEFAULTS`, the config an empty config file gives, so that a settings class or a
function used outside the workflow (tests, bench/, a notebook) defaults to what a run would do:
write `DEFAULTS["generation"]["top_k"]`, never the literal. tests/unit/test_config.py checks that
no default in the code differs from the schema's, and tools/config_table.py writes the
configuration table of the docs from the schema's defaults and descriptions.
"""

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators

from gradual.errors import InputError

# The workflow's schema, found from the package in the working copy it runs from (src/gradual, or
# the link scripts/gradual that conda environments import it through).
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"

# Keys an earlier version read, and what replaced them: a config written for it gets told.
RENAMED = {
    ("training", "seed"): "renamed training.seeds, a list of training seeds (training: {seeds: [0]})",
    ("generation", "vllm", "dtype"): "set model.compute_dtype instead, the dtype of both backends and of training",
    ("generation", "vllm", "tensor_parallel_size"): "set generation.gpus instead, the GPUs each generation job holds",
    ("evaluation", "splits"): "removed (it was read nowhere): dev and test always get the fixed evaluation prompts",
}


def load_schema(schema_path: str | Path = SCHEMA) -> dict:
    return yaml.safe_load(Path(schema_path).read_text())


def check_config(config: dict, schema_path: str | Path = SCHEMA) -> None:
    """Config checks that name the offending key in one line, before Snakemake fills in defaults."""
    schema = load_schema(schema_path)
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


def with_defaults(config: dict, schema: dict) -> dict:
    """A copy of `config` with every key it leaves out set to the schema's default, nested ones
    included, as Snakemake's `validate(set_default=True)` fills a run's config (the jsonschema FAQ's
    way, which it uses too)."""
    properties = Draft202012Validator.VALIDATORS["properties"]

    def set_defaults(validator, subschemas, instance, schema):
        for key, subschema in subschemas.items():
            if "default" in subschema and isinstance(instance, dict):
                instance.setdefault(key, copy.deepcopy(subschema["default"]))
        yield from properties(validator, subschemas, instance, schema)

    filled = copy.deepcopy(config)
    validators.extend(Draft202012Validator, {"properties": set_defaults})(schema).validate(filled)
    return filled


def schema_keys(schema: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Every key of the config as (dotted key, its subschema), in the schema's order, a section
    before its keys."""
    keys = []
    for name, subschema in schema.get("properties", {}).items():
        keys.append((prefix + name, subschema))
        keys += schema_keys(subschema, f"{prefix}{name}.")
    return keys


DEFAULTS = with_defaults({}, load_schema())
