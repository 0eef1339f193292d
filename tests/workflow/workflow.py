"""Running snakemake from the tests: the project's Snakefile, from a chosen working directory."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args: str, cwd: Path = ROOT, check: bool = True) -> subprocess.CompletedProcess:
    """Run snakemake on the project's Snakefile (and so its profiles/default) from `cwd`."""
    command = [*SNAKEMAKE, "--snakefile", str(ROOT / "Snakefile"), *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done
