"""The workflow's shape: lint, the paper's DAG, config validation. No job runs here."""

import re

from conftest import ROOT, snakemake


def test_lint_passes():
    done = snakemake("--lint", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Congratulations" in done.stdout + done.stderr


def job_counts(output: str) -> dict[str, int]:
    """The 'job  count' table that a dry run prints."""
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", output, flags=re.M)}


def test_paper_configuration_builds_its_dag(workdir):
    done = snakemake("-n", "--configfile", str(ROOT / "configs/paper-qwen2-7b.yaml"), cwd=workdir)
    counts = job_counts(done.stdout)
    # 32 generation shards for each of train and test, both categorised; prompts for
    # detection (train, test) and evaluation (dev, test); one download, one model.
    assert counts == {
        "all": 1,
        "assign_categories": 2,
        "download_dataset": 1,
        "generate": 64,
        "prepare_dataset": 1,
        "prepare_model": 1,
        "sample_prompts": 4,
        "total": 74,
    }
    assert "resources/models/qwen2-7b" in done.stdout


def test_default_configuration_builds_its_dag(workdir):
    counts = job_counts(snakemake("-n", cwd=workdir).stdout)
    assert counts["generate"] == 2 and counts["assign_categories"] == 1 and "download_dataset" not in counts


def test_unknown_key_stops_before_any_job(workdir):
    done = snakemake("-n", "--config", "generation={'n_sample': 3}", cwd=workdir, check=False)
    assert done.returncode != 0
    assert "generation: Additional properties are not allowed ('n_sample' was unexpected)" in done.stdout
    assert "Job stats" not in done.stdout


def test_bad_value_names_the_key(workdir):
    (workdir / "bad.yaml").write_text("detection: {n_prompts: 0}\nmatching: {mode: fuzzy}\n")
    done = snakemake("-n", "--configfile", str(workdir / "bad.yaml"), cwd=workdir, check=False)
    assert done.returncode != 0
    assert "detection.n_prompts: 0 is less than the minimum of 1" in done.stdout
    assert "matching.mode: 'fuzzy' is not one of" in done.stdout


def test_bad_prompt_template_stops_at_start(workdir):
    done = snakemake("-n", "--config", "prompt={'template': 'Q: {question}'}", cwd=workdir, check=False)
    assert done.returncode != 0
    assert "prompt.template must contain {answer} exactly once" in done.stdout
