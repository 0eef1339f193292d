"""The workflow's shape: lint, the paper's DAG, config validation. No job runs here."""

import re

import pytest
import yaml
from workflow import MODEL_ID, ROOT, planned_jobs, snakemake


def test_lint_passes():
    done = snakemake("--lint", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Congratulations" in done.stdout + done.stderr


def job_counts(output: str) -> dict[str, int]:
    """The 'job  count' table that a dry run prints."""
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", output, flags=re.M)}


# The paper configurations' DAG: 7 two-stage states (stage 1, stage 2 with strategies 1-5, stage 3 with
# strategy 5) and 3 sweep states (15, 20, 25 epochs; 10 is stage 1 itself). Generation, shards
# {detect: {train: 32, test: 4}, retest: 32, eval: 1}: the untuned model on detect train and test, retest
# train and eval test (32 + 4 + 32 + 1); each two-stage state on detect train and eval test (7 x 33); stage
# 1's retest, the floor of Table 12 (32); each sweep state on eval test (3 x 1). Only the untuned model's
# test categories are read (Table 9). Re-detection on fresh prompts: each two-stage state draws its own,
# and stage 1 its retest's (5 + 7 + 1 prompt sets).
PAPER_JOBS = {
    "all": 1,
    "assign_categories": 3 + 7 + 1,
    "download_dataset": 1,
    "finetune": 7 + 3,
    "generate": 69 + 7 * 33 + 32 + 3,
    "prepare_dataset": 1,
    "prepare_model": 1,
    "provenance": 1,
    "report": 1,
    "sample_prompts": 5 + 7 + 1,
    "score_evaluation": 1 + 7 + 3,
    "tables": 1,
    "training_pairs": 7 + 3,
    "total": 397,
}


@pytest.mark.parametrize(
    ("config", "model"), [("paper-qwen2-7b", "qwen2-7b"), ("paper-llama3-8b", "llama3-8b")]
)  # fmt: skip
def test_paper_configurations_build_their_dag(workdir, config, model):
    done = snakemake("-n", "--configfile", str(ROOT / f"configs/{config}.yaml"), cwd=workdir)
    assert job_counts(done.stdout) == PAPER_JOBS
    assert re.search(rf"results/{config}/models/{model}-[0-9a-f]{{10}}\.json", done.stdout)
    states = set(re.findall(r"results/[\w-]+/adapters/([\w-]+)", done.stdout))
    assert states == {
        "stage1",
        *(f"stage2-s{k}" for k in range(1, 6)),
        "stage3-s5",
        "sweep-e15",
        "sweep-e20",
        "sweep-e25",
    }


@pytest.mark.parametrize("config", ["configs/paper-qwen2-7b.yaml", "config.yaml", "configs/test.yaml"])
def test_the_report_declares_every_benchmark_it_sums(workdir, config):
    """The report's list of benchmark files (rules/common.smk, job_benchmarks) against the jobs the DAG
    plans, in run shapes of one stage and of many (strategies 1-5, rounds, the sweep, an epoch sweep)."""
    done = snakemake("-n", "--configfile", str(ROOT / config), cwd=workdir)
    jobs = re.findall(r"^rule (\w+):\n((?:    .*\n?)*)", done.stdout, flags=re.M)
    benchmarks = {re.search(r"^    benchmark: (\S+)$", job, flags=re.M).group(1) for rule, job in jobs if rule != "all"}
    report = next(block for rule, block in jobs if rule == "report")
    declared = set(re.search(r"^    input: (.*)$", report, flags=re.M).group(1).split(", "))
    own = re.search(r"^    benchmark: (\S+)$", report, flags=re.M).group(1)
    assert benchmarks - declared == {own}  # all but its own
    assert len(benchmarks) == len([rule for rule, _ in jobs if rule != "all"])  # every job has one
    if config == "configs/paper-qwen2-7b.yaml":
        assert len(benchmarks) == PAPER_JOBS["total"] - 1


def test_default_configuration_builds_its_dag(workdir):
    counts = job_counts(snakemake("-n", cwd=workdir).stdout)
    # one shard per job: untuned detect train/test, retest train, eval test; stage 1 and stage 2
    # (strategy 5) detect train and eval test (no table reads a trained state's test categories); stage
    # 1's retest, the floor of Table 12 on fresh prompts
    assert counts["generate"] == (1 + 1 + 1 + 1) + 2 * (1 + 1) + 1 and counts["finetune"] == 2
    assert "download_dataset" not in counts


def test_detect_plans_only_the_untuned_models_detection(workdir):
    """`snakemake detect`: the untuned model's categories of train and test (configs/test.yaml: 2 shards each)
    and nothing of the retest, the evaluation, fine-tuning or re-detection."""
    done = snakemake("-n", "detect", "--configfile", str(ROOT / "configs/test.yaml"), cwd=workdir)
    splits = ("train", "test")
    assert planned_jobs(done.stdout) == {
        "detect", "prepare_dataset", f"prepare_model[{MODEL_ID}]",
        *(f"sample_prompts[detect/{split}]" for split in splits),
        *(f"generate[base/detect/{split}/{shard}]" for split in splits for shard in (0, 1)),
        *(f"assign_categories[base/detect/{split}]" for split in splits),
    }  # fmt: skip
    assert "results/test/categories/base/detect/train.counts.md" in done.stdout  # Table 2


def finetune_reads_test(output: str) -> dict[str, bool]:
    """Per fine-tuned state of a dry run, whether its job reads the test questions (to score every epoch)."""
    blocks = re.findall(r"^rule finetune:\n((?:    .*\n?)*)", output, flags=re.M)
    return {
        re.search(r"wildcards: state=([\w-]+)", block).group(1): "prompts/eval/test.parquet" in block
        for block in blocks
    }


def test_test_is_scored_per_epoch_only_where_a_table_reads_it_or_it_picks_the_epoch(workdir):
    paper = snakemake("-n", "--configfile", str(ROOT / "configs/paper-qwen2-7b.yaml"), cwd=workdir).stdout
    # Table 6 (the epoch sweep: stage 1's 10 epochs and the 15, 20, 25-epoch runs) reads test accuracy per epoch
    assert finetune_reads_test(paper) == {
        "stage1": True, **{f"stage2-s{k}": False for k in range(1, 6)}, "stage3-s5": False,
        **{f"sweep-e{m}": True for m in (15, 20, 25)},
    }  # fmt: skip
    assert set(finetune_reads_test(snakemake("-n", cwd=workdir).stdout).values()) == {False}
    on_test = snakemake("-n", "--config", "training={'selection_split': 'test'}", cwd=workdir).stdout
    assert set(finetune_reads_test(on_test).values()) == {True}  # the paper's way: test picks the epoch


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


def job_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """Per rule, the resources of each job a dry run plans."""
    jobs = {}
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", output, flags=re.M):
        line = re.search(r"^    resources: (.*)$", body, flags=re.M)
        jobs.setdefault(rule, []).append(dict(item.split("=", 1) for item in line.group(1).split(", ")) if line else {})
    return jobs


def paper_on_slurm(workdir, *extra):
    args = ("-n", "--configfile", str(ROOT / "configs/paper-qwen2-7b.yaml"), "--profile", str(ROOT / "profiles/slurm"))
    return job_resources(snakemake(*args, *extra, cwd=workdir).stdout)


def test_the_slurm_profile_gives_gpus_to_the_gpu_rules(workdir):
    """Which rules the profile submits and which run on the submitting node: tests/workflow/test_slurm.py."""
    jobs = paper_on_slurm(workdir)  # no conda needed for a dry run
    for rule, memory, runtime in (("generate", "64000", "240"), ("finetune", "128000", "480")):
        assert {
            (job["slurm_partition"], job["gpu"], job["cpus_per_gpu"], job["mem_mb"], job["runtime"])
            for job in jobs[rule]
        } == {("gpu", "1", "8", memory, runtime)}, rule
    for rule, memory in (("sample_prompts", "16000"), ("assign_categories", "32000")):
        assert {(job["slurm_partition"], job["mem_mb"], "gpu" in job) for job in jobs[rule]} == {("cpu", memory, False)}


def test_a_command_line_override_does_not_drop_the_gpu(workdir):
    jobs = paper_on_slurm(workdir, "--set-resources", "generate:runtime=999", "--default-resources", "mem_mb=1000")
    assert {(job["gpu"], job["runtime"]) for job in jobs["generate"]} == {("1", "999")}
    assert {job["gpu"] for job in jobs["finetune"]} == {"1"}


def test_each_gpu_job_asks_for_its_configured_gpus_in_one_task(workdir):
    """A four-GPU training and two-GPU generation; on the test cluster: tests/workflow/test_slurm.py."""
    (workdir / "gpus.yaml").write_text("training: {gpus: 4}\ngeneration: {gpus: 2}\n")
    jobs = paper_on_slurm(workdir, "--configfile", str(workdir / "gpus.yaml"))
    for rule, gpus in (("finetune", "4"), ("generate", "2")):
        assert {(job["gpu"], job["tasks_per_gpu"], job["cpus_per_gpu"]) for job in jobs[rule]} == {(gpus, "0", "8")}


@pytest.mark.parametrize("rule, minutes", [("generate", 240), ("finetune", 480)])
def test_a_retry_gets_more_time(rule, minutes):
    profile = yaml.safe_load((ROOT / "profiles/slurm/config.yaml").read_text())
    expression = profile["set-resources"][rule]["runtime"]
    assert [eval(expression, {"attempt": attempt}) for attempt in (1, 2)] == [minutes, 2 * minutes]


def test_values_vllm_refuses_stop_at_start(workdir):
    (workdir / "bad.yaml").write_text("generation: {temperature: 2.5}\ntraining: {lora_rank: 1024}\n")
    done = snakemake("-n", "--configfile", str(workdir / "bad.yaml"), cwd=workdir, check=False)
    assert done.returncode != 0
    assert "generation.temperature: 2.5 is greater than the maximum of 2" in done.stdout
    assert "training.lora_rank: 1024 is greater than the maximum of 512" in done.stdout


def test_gpu_jobs_take_their_own_threads_and_one_gpu_not_every_core(workdir):
    output = snakemake("-n", "--cores", "16", cwd=workdir).stdout
    for rule in ("generate", "finetune"):
        blocks = re.findall(rf"^rule {rule}:\n((?:    .*\n?)*)", output, flags=re.M)
        assert blocks and all("threads: 4" in block and "gpu=1" in block for block in blocks), rule


def test_each_partition_is_named_once_in_the_slurm_profile():
    text = (ROOT / "profiles/slurm/config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert text.count('"cpu"') == 1 and text.count('"gpu"') == 1  # edited there, carried by YAML anchors
    assert (
        profile["set-resources"]["finetune"]["slurm_partition"]
        == profile["set-resources"]["generate"]["slurm_partition"]
    )


def test_controls_seeds_and_same_prompts_shape_the_dag(workdir):
    edit = "method: {controls: [continue, replay-only, random], redetect_prompts: same}\ntraining: {seeds: [0, 1]}\n"
    (workdir / "edit.yaml").write_text(edit)
    done = snakemake("-n", "--configfile", str(ROOT / "config.yaml"), str(workdir / "edit.yaml"), cwd=workdir)
    counts = job_counts(done.stdout)
    # per seed: stage 1, stage 2 (strategy 5) and three controls, each trained, detected on train and
    # evaluated; on the same prompts no trained state draws its own and stage 1 has no retest
    assert counts["finetune"] == 2 * 5 and counts["training_pairs"] == 2 * 5
    assert counts["generate"] == 4 + 2 * 5 * 2 and counts["sample_prompts"] == 5
    for state in ("stage2-random-seed1", "stage2-continue", "stage1-seed1"):
        assert f"results/default/adapters/{state}" in done.stdout
