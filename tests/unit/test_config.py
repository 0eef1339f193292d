from pathlib import Path

import pytest

from gradual.config import check_config
from gradual.errors import InputError
from gradual.tables import RunShape

SCHEMA = Path(__file__).parents[2] / "schemas" / "config.schema.yaml"


def test_a_renamed_key_is_named_with_what_replaced_it():
    with pytest.raises(InputError) as raised:
        check_config({"training": {"seed": 1}}, SCHEMA)
    assert "training: Additional properties are not allowed ('seed' was unexpected)" in str(raised.value)
    assert "training.seed: renamed training.seeds, a list of training seeds" in str(raised.value)

    with pytest.raises(InputError, match="generation.vllm.dtype: set model.compute_dtype instead"):
        check_config({"generation": {"vllm": {"dtype": "float32"}}}, SCHEMA)
    check_config({"generation": {"vllm": {"max_model_len": 512}}, "model": {"compute_dtype": "bfloat16"}}, SCHEMA)
    with pytest.raises(InputError, match="evaluation.splits: removed"):
        check_config({"evaluation": {"splits": ["dev", "test"]}}, SCHEMA)


def test_controls_need_the_strategy_they_are_matched_on():
    with pytest.raises(InputError, match="add 5 to method.strategies"):
        RunShape(rounds=2, strategies=(2,), controls=("random",))
    with pytest.raises(InputError, match="rounds >= 2"):
        RunShape(rounds=1, strategies=(5,), controls=("random",))
    assert RunShape(rounds=2, strategies=(2, 5), controls=("random",)).control_states == {"random": "stage2-random"}
