"""Config checks that name the offending key in one line, before Snakemake fills in defaults."""

from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from gradual.errors import InputError


def check_config(config: dict, schema_path: str | Path) -> None:
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(Draft202012Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors]
        raise InputError("invalid config:\n" + "\n".join(lines))
