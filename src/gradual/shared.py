"""Folders shared by runs and working copies (converted models, downloaded datasets).

Such a folder is not a Snakemake output: Snakemake deletes an output before it rebuilds it, and
another run may be reading the folder at that moment. Instead the folder is named by a digest
of what it holds (`shared_id`), built once under a lock into a hidden sibling, and renamed into
place complete; once there it is only ever read. Each run records which folder it uses in a
small manifest of its own (the rule's output).
"""

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from gradual.errors import InputError
from gradual.fingerprint import digest
from gradual.io import write_text

# Bump when a builder writes a folder differently: the new version gets new folders.
FORMAT_VERSION = 2
SPEC_FILE = "spec.json"

log = logging.getLogger(__name__)


def shared_id(name: str, spec: dict) -> str:
    """`name` plus a short digest of the spec: another spec never lands in the same folder."""
    return f"{name}-{digest({'format': FORMAT_VERSION, **spec})[:10]}"


@contextlib.contextmanager
def _locked(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(folder: str | Path, spec: dict, build: Callable[[Path], None]) -> bool:
    """Make `folder` hold what `build(path)` writes for `spec`, unless a complete one is there.

    Returns True when it was built now, False when reused. A folder is complete when its
    `spec.json` (written last) exists; a build that fails leaves nothing behind.
    """
    folder = Path(folder)
    with _locked(folder.with_name(f".{folder.name}.lock")):
        if (folder / SPEC_FILE).is_file():
            log.info("reusing %s", folder)
            return False
        partial = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            build(partial)
            (partial / SPEC_FILE).write_text(json.dumps(spec, indent=1) + "\n")
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        if folder.exists():  # a folder without spec.json: not ours to trust
            shutil.rmtree(folder)
        os.replace(partial, folder)
        log.info("built %s", folder)
        return True


def write_manifest(path: str | Path, spec: dict, folder: str | Path) -> None:
    """A run's record of which shared folder (or local directory) it uses for `spec`."""
    write_text(json.dumps({"spec": spec, "path": str(folder)}, indent=1) + "\n", path)


def folder_of(manifest: str | Path) -> Path:
    """The folder a run's manifest points at."""
    manifest = Path(manifest)
    if not manifest.is_file():
        raise InputError(f"{manifest}: no such manifest (the rule that writes it has not run)")
    folder = Path(json.loads(manifest.read_text())["path"])
    if not folder.is_dir():
        raise InputError(f"{manifest} points at {folder}, which is gone: delete {manifest} and run again")
    return folder
