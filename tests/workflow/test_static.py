"""The workflow's shape: lint, the paper's DAG, config validation. No job runs here."""

import re

from workflow import ROOT, snakemake


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
    # 11 fine-tuned states: stage 1, stage 2 with strategies 1-5, and the epoch sweep (1, 2, 3, 5, 10).
    # Generation, 32 shards each: the untuned model on detect train/test, retest train and eval
    # test (4); each two-stage state on detect train/test and eval test (6 x 3); each sweep state
    # on eval test (5): 27 x 32 = 864.
    assert counts == {
        "all": 1,
        "assign_categories": 3 + 6 * 2,
        "download_dataset": 1,
        "finetune": 11,
        "generate": 864,
        "prepare_dataset": 1,
        "prepare_model": 1,
        "sample_prompts": 5,
        "score_evaluation": 12,
        "tables": 1,
        "training_pairs": 11,
        "total": 923,
    }
    assert re.search(r"results/paper-qwen2-7b/models/qwen2-7b-[0-9a-f]{10}\.json", done.stdout)


def test_default_configuration_builds_its_dag(workdir):
    counts = job_counts(snakemake("-n", cwd=workdir).stdout)
    # two shards for: untuned detect train/test, retest train, eval test; stage 1 and stage 2 (strategy 5)
    # detect train/test and eval test
    assert counts["generate"] == 2 * (4 + 2 * 3) and counts["finetune"] == 2 and "download_dataset" not in counts


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
