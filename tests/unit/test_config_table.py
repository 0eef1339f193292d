"""The configuration table of the docs, written from the schema by tools/config_table.py."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "config_table.py"
_spec = importlib.util.spec_from_file_location("config_table", TOOL)
config_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(config_table)


def test_the_docs_table_is_the_schemas():
    done = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_row_per_key_with_its_default_and_description():
    schema = {
        "properties": {
            "run": {"default": "default", "description": "Outputs go to `results/<run>/`."},
            "prompt": {
                "default": {},
                "description": "How a pair is written.",
                "properties": {
                    "template": {"default": "Q: {q}\nA: {a}", "description": "One block,\n  folded | escaped."},
                    "splits": {"default": ["train", "test"], "description": "Splits."},
                    "pool": {"default": None, "description": "Null."},
                    "vllm": {"default": {}, "description": "Options."},
                },
            },
        }
    }
    assert config_table.config_table(schema).splitlines() == [
        "| key | default | meaning |",
        "|---|---|---|",
        "| `run` | `default` | Outputs go to `results/<run>/`. |",
        "| `prompt` |  | How a pair is written. |",
        '| `prompt.template` | `"Q: {q}\\nA: {a}"` | One block, folded \\| escaped. |',
        "| `prompt.splits` | `[train, test]` | Splits. |",
        "| `prompt.pool` | `null` | Null. |",
        "| `prompt.vllm` | `{}` | Options. |",
    ]


def test_the_table_replaces_only_what_is_between_the_markers():
    text = "# Configuration\n\nBefore.\n<!-- config-table:start -->\nold\n<!-- config-table:end -->\nAfter.\n"
    assert config_table.with_table(text, "new") == (
        "# Configuration\n\nBefore.\n<!-- config-table:start -->\nnew\n<!-- config-table:end -->\nAfter.\n"
    )
