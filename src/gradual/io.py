"""Parquet and text outputs written atomically, so a killed step never leaves a file that looks complete."""

import json
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

METADATA_KEY = b"gradual"


def _atomic_target(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.name}.partial")


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike, metadata: dict | None = None) -> None:
    """`metadata` (JSON-like) travels inside the file, readable with `read_parquet_metadata`."""
    path, partial = _atomic_target(path)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata is not None:
        table = table.replace_schema_metadata({**table.schema.metadata, METADATA_KEY: json.dumps(metadata)})
    pq.write_table(table, partial)
    os.replace(partial, path)


def read_parquet_metadata(path: str | os.PathLike) -> dict | None:
    """What `write_parquet` was given as `metadata`, without reading the rows."""
    stored = pq.read_schema(path).metadata or {}
    return json.loads(stored[METADATA_KEY]) if METADATA_KEY in stored else None


def write_text(text: str, path: str | os.PathLike) -> None:
    path, partial = _atomic_target(path)
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_markdown(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """The table as Markdown, a missing value (NaN, None, <NA>) as an empty cell."""
    shown = frame.astype(object).where(frame.notna(), "")
    write_text(shown.to_markdown(index=False) + "\n", path)
