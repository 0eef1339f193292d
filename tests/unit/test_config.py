import inspect
from pathlib import Path

import pytest
from snakemake.utils import validate

from gradual import dataset, prior
from gradual.config import DEFAULTS, check_config, load_schema, schema_keys, with_defaults
from gradual.detection import generate_answers
from gradual.errors import InputError
from gradual.generation import GenerationSettings
from gradual.matching import is_correct
from gradual.models import model_spec
from gradual.prompts import PromptFormat
from gradual.tables import RunShape
from gradual.training import TrainingSettings

SCHEMA = Path(__file__).parents[2] / "schemas" / "config.schema.yaml"


def test_a_renamed_key_is_named_with_what_replaced_it():
    with pytest.raises(InputError) as raised:
        check_config({"training": {"seed": 1}}, SCHEMA)
    assert "training: Additional properties are not allowed ('seed' was unexpected)" in str(raised.value)
    assert "training.seed: renamed training.seeds, a list of training seeds" in str(raised.value)

    with pytest.raises(InputError, match="generation.vllm.dtype: set model.compute_dtype instead"):
        check_config({"generation": {"vllm": {"dtype": "float32"}}}, SCHEMA)
    with pytest.raises(InputError, match="generation.vllm.tensor_parallel_size: set generation.gpus instead"):
        check_config({"generation": {"vllm": {"tensor_parallel_size": 2}}}, SCHEMA)
    check_config({"generation": {"vllm": {"max_model_len": 512}}, "model": {"compute_dtype": "bfloat16"}}, SCHEMA)
    with pytest.raises(InputError, match="evaluation.splits: removed"):
        check_config({"evaluation": {"splits": ["dev", "test"]}}, SCHEMA)


def test_controls_need_the_strategy_they_are_matched_on():
    with pytest.raises(InputError, match="add 5 to method.strategies"):
        RunShape(rounds=2, strategies=(2,), controls=("random",))
    with pytest.raises(InputError, match="rounds >= 2"):
        RunShape(rounds=1, strategies=(5,), controls=("random",))
    assert RunShape(rounds=2, strategies=(2, 5), controls=("random",)).control_states == {"random": "stage2-random"}


# Code whose defaults stand for config keys: its config section, and the keys of the parameters
# named otherwise (None: a parameter that is no config key).
MIRRORS = [
    (GenerationSettings, "generation", {"dtype": "model.compute_dtype"}),
    (
        TrainingSettings,
        "training",
        {
            "epochs": "training.stage1.epochs",
            "learning_rate": "training.stage1.learning_rate",
            "weight_decay": "training.stage1.weight_decay",
            "seed": "training.seeds.0",
            "dtype": "model.compute_dtype",
        },
    ),
    (PromptFormat, "prompt", {}),
    (model_spec, "model", {}),
    (dataset.prepare, "dataset", {"frame": None, "templates": None, "min_train_per_relation": None}),
    (
        generate_answers,
        "generation",
        {
            **dict.fromkeys(["backend", "prompts", "sampling", "golds", "match_mode"]),
            "until_correct": "generation.sample_until_correct",
        },
    ),
    (is_correct, "matching", {"generated": None, "golds": None}),
    (prior.answer_prior, "matching", {"train": None, "greedy": None}),
]


def default_at(key: str):
    value = DEFAULTS
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


@pytest.mark.parametrize("code, section, renamed", MIRRORS, ids=lambda m: getattr(m, "__qualname__", None))
def test_no_default_in_the_code_differs_from_the_schemas(code, section, renamed):
    """A parameter that stands for a config key has no default or the schema's (gradual.config)."""
    for name, parameter in inspect.signature(code).parameters.items():
        key = renamed.get(name, f"{section}.{name}")
        if key is None:
            continue
        default_at(key)  # every parameter is a config key, even one without a default
        if parameter.default is not inspect.Parameter.empty:
            assert parameter.default == default_at(key), f"{code.__qualname__}({name}=...) is not {key}'s default"


def test_the_defaults_are_those_the_workflow_fills_in_and_valid():
    config = {}
    validate(config, str(SCHEMA), set_default=True)  # as rules/common.smk does
    assert DEFAULTS == config
    check_config(DEFAULTS)
    assert GenerationSettings() == GenerationSettings.from_config(DEFAULTS["generation"])
    assert (DEFAULTS["generation"]["top_k"], DEFAULTS["prompt"]["separator"], DEFAULTS["training"]["seeds"]) == (
        40,
        "\n\n",
        [0],
    )


def test_with_defaults_fills_nested_keys_and_keeps_given_values():
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "integer", "default": 1},
            "section": {
                "type": "object",
                "default": {},
                "properties": {"b": {"default": [2]}, "c": {"default": None}},
            },
        },
    }
    given = {"section": {"c": 3}}
    assert with_defaults(given, schema) == {"a": 1, "section": {"b": [2], "c": 3}}
    assert with_defaults({}, schema) == {"a": 1, "section": {"b": [2], "c": None}}
    assert given == {"section": {"c": 3}}  # a copy: the caller's config is left as it was
    filled = with_defaults({}, schema)
    filled["section"]["b"].append(9)
    assert with_defaults({}, schema)["section"]["b"] == [2]  # no default shared between fills


def test_every_key_has_a_default_and_a_description():
    keys = schema_keys(load_schema())
    assert [key for key, spec in keys if "default" not in spec or "description" not in spec] == []
    assert [key for key, _ in keys][:4] == ["run", "resources_dir", "dataset", "dataset.source"]
    assert "training.stage2.weight_decay" in dict(keys)
