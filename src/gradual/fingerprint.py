"""Content digests: what a result was computed from, so a saved result is reused only for exactly
the inputs it belongs to (training checkpoints, shared model and dataset folders)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd


def _plain(value):
    if isinstance(value, pd.DataFrame):
        return {"columns": list(value.columns), "rows": value.to_numpy().tolist()}
    if isinstance(value, (np.ndarray, pd.Series)):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot fingerprint a {type(value).__name__}")


def digest(value) -> str:
    """SHA-256 of a JSON-like value (dicts, lists, numbers, strings, DataFrames); dict order does not matter."""
    text = json.dumps(value, sort_keys=True, default=_plain, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def folder_digest(folder: str | Path) -> str:
    """SHA-256 over the names and bytes of every file under `folder`."""
    folder = Path(folder)
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
        sha.update(b"\0")
    return sha.hexdigest()
