"""Parquet and text outputs written atomically, so a killed step never leaves a file that looks complete."""

import os
from pathlib import Path

import pandas as pd


def _atomic_target(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path, path.with_name(f".{path.name}.partial")


def write_parquet(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    path, partial = _atomic_target(path)
    frame.to_parquet(partial, index=False)
    os.replace(partial, path)


def write_text(text: str, path: str | os.PathLike) -> None:
    path, partial = _atomic_target(path)
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
