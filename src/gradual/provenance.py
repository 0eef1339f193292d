"""What produced a run: its resolved config, the project's commit, the versions of the stack, and
per generation job the backend, device and dtype it actually used, and per training job its device
and dtype (`model.compute_dtype: auto` resolves on the machine that runs the job)."""

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = ("gradual", "snakemake", "torch", "transformers", "peft", "vllm", "pandas", "pyarrow")


def versions() -> dict[str, str | None]:
    """Python's and each package's version in this environment (None: not installed)."""
    found = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def project_commit(root: str | Path) -> dict[str, str | bool] | None:
    """The commit of the working copy at `root` and whether it has uncommitted changes; None outside git."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout

    try:
        return {"commit": git("rev-parse", "HEAD").strip(), "dirty": bool(git("status", "--porcelain").strip())}
    except (OSError, subprocess.CalledProcessError):
        return None
