"""Write the configuration table of docs/configuration.md from the config schema: a row for every
key, with its default and description, so that the docs cannot drift from what a run does.

    python tools/config_table.py          # rewrite the table between the markers
    python tools/config_table.py --check  # fail when the file is not what the schema gives (CI, tests)
"""

import argparse
import json
import sys
from pathlib import Path

from gradual.config import load_schema, schema_keys

DOC = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def shown(value) -> str:
    """A default as a config file writes it (YAML flow style); a string that YAML would quote is
    shown with its escapes ("Q: {question}\\nA: {answer}")."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(shown, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {shown(item)}" for key, item in value.items()) + "}"
    if isinstance(value, str) and (not value.isprintable() or value != value.strip() or not value):
        return json.dumps(value)
    return str(value)


def config_table(schema: dict) -> str:
    """One row per key in the schema's order, a section before its keys (and without a default: its
    keys have them)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    for key, subschema in schema_keys(schema):
        missing = [field for field in ("default", "description") if field not in subschema]
        if missing:
            raise SystemExit(f"config key {key} has no {' and no '.join(missing)} in the schema")
        default = "" if "properties" in subschema else f"`{shown(subschema['default'])}`"
        meaning = " ".join(subschema["description"].split()).replace("|", "\\|")
        rows.append(f"| `{key}` | {default} | {meaning} |")
    return "\n".join(rows)


def with_table(text: str, table: str) -> str:
    """`text` with the table between its markers replaced."""
    head, start, rest = text.partition(START)
    _, end, tail = rest.partition(END)
    if not (start and end):
        raise SystemExit(f"{DOC}: no {START} ... {END} markers")
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the table is current")
    args = parser.parse_args()
    text = DOC.read_text()
    current = with_table(text, config_table(load_schema()))
    if args.check:
        if current != text:
            print(f"{DOC} is not the schema's table: run python tools/config_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(current)
    return 0


if __name__ == "__main__":
    sys.exit(main())
