"""Running snakemake from the tests: the project's Snakefile (or a copy's), from a chosen working directory."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# What a working copy of the workflow holds (besides its results): enough to run it from there.
WORKFLOW_FILES = ("Snakefile", "config.yaml", "configs", "rules", "scripts", "src", "schemas", "envs", "profiles")


def snakemake(
    *args: str, cwd: Path = ROOT, check: bool = True, snakefile: Path | None = None
) -> subprocess.CompletedProcess:
    """Run snakemake on the project's Snakefile (and so its profiles/default) from `cwd`."""
    command = [*SNAKEMAKE, "--snakefile", str(snakefile or ROOT / "Snakefile"), *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if check and done.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def copy_workflow(destination: Path, keep_times: bool = True) -> Path:
    """A working copy of the workflow at `destination`, as a user's clone would be. With
    `keep_times=False` every file is new, as in a fresh clone."""
    copy = shutil.copy2 if keep_times else shutil.copy
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in WORKFLOW_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, symlinks=True, copy_function=copy, ignore=ignore)
        else:
            destination.mkdir(parents=True, exist_ok=True)
            copy(source, destination / name)
    return destination


def planned_jobs(dry_run_output: str) -> set[str]:
    """The jobs a dry run plans, as `rule[wildcard values]` (`rule` for a rule without wildcards)."""
    jobs = set()
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", dry_run_output, flags=re.M):
        wildcards = re.search(r"^    wildcards: (.*)$", body, flags=re.M)
        values = "/".join(part.split("=", 1)[1] for part in wildcards.group(1).split(", ")) if wildcards else ""
        jobs.add(f"{rule}[{values}]" if values else rule)
    return jobs
