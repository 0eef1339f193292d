"""configs/test.yaml through profiles/slurm on a real one-node SLURM (tests/slurm/cluster.sh), with
fake GPUs that sbatch enforces: where each job ran, a killed controller, a cancelled job, and the
same results as the local run."""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from workflow import ROOT, SNAKEMAKE, Run, copy_workflow, planned_jobs

from gradual.io import read_parquet_metadata

pytestmark = pytest.mark.slurm

SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")
GPU_RULES = {"generate", "finetune"}
# Run on the submitting node: quick, or needing the internet (downloads).
LOCAL_RULES = {"download_dataset", "prepare_model", "prepare_dataset", "training_pairs", "score_evaluation", "tables",
               "provenance", "report", "all"}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = [binary for binary in SLURM_BINARIES if shutil.which(binary) is None]
    if missing:
        pytest.skip(
            f"no SLURM here ({', '.join(missing)} missing): install Debian's slurmctld slurmd slurm-client munge"
        )
    if os.geteuid() != 0:
        pytest.skip("the test cluster needs root: slurmd runs each job as its user, munged as root with --force")
    folder = tmp_path_factory.mktemp("slurm")
    subprocess.run([str(ROOT / "tests" / "slurm" / "cluster.sh"), "start", str(folder)], check=True)
    yield folder
    subprocess.run([str(ROOT / "tests" / "slurm" / "cluster.sh"), "stop", str(folder)], check=False)


def edited_profile(folder: Path) -> Path:
    """profiles/slurm copied and edited as the README tells a user to, for a 2-CPU node: less
    memory, one CPU per GPU and one thread (as the local run, so the results can be compared), no
    account, status by squeue, quick status checks, no retry (so that a cancelled job fails and
    is left to the rerun)."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["mem_mb"] = 1000
    for resources in profile["set-resources"].values():
        resources["mem_mb"] = 2000
        if "cpus_per_gpu" in resources:
            resources["cpus_per_gpu"] = 1
    profile["set-threads"] = {rule: 1 for rule in profile["set-threads"]}
    profile |= {
        "retries": 0,
        "latency-wait": 5,
        "seconds-between-status-checks": 2,
        "slurm-no-account": True,
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 1,
    }
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder


def slurm_jobs() -> list[dict[str, str]]:
    """Every job the cluster still knows (finished ones for MinJobAge), as scontrol's key=value fields."""
    out = subprocess.run(["scontrol", "show", "job", "--oneliner"], capture_output=True, text=True, check=True).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        if "JobId" in fields:
            jobs.append(fields)
    return jobs


def rule_of(job: dict[str, str]) -> str:
    """The rule of a job, from the comment the executor plugin sets (rule_<name>[_wildcards_...])."""
    return job.get("Comment", "").removeprefix("rule_").split("_wildcards_")[0]


def running_rules() -> set[str]:
    return {rule_of(job) for job in slurm_jobs() if job["JobState"] == "RUNNING"}


def wait_for(condition, what: str, timeout: float = 600):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def queue_is_empty() -> bool:
    return not subprocess.run(["squeue", "-h"], capture_output=True, text=True, check=True).stdout.strip()


def start(run: Run, *args: str) -> subprocess.Popen:
    command = [*SNAKEMAKE, "--snakefile", str(run.workdir / "Snakefile"), *args, *run.args]
    return subprocess.Popen(command, cwd=run.workdir, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def outputs_with_times(run: Run) -> dict[str, int]:
    results = run.workdir / "results"
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def slurm_run(cluster, run, tmp_path_factory):
    """The test config through the edited SLURM profile, in its own working copy; shares the local
    run's resources (the converted model). Its controller is killed with SIGKILL while a training
    job runs; the README's resume (cancel what it left in the queue, unlock, run again) finishes it.
    Gives the run, its outputs (with their times) at the kill, and at the end."""
    base = tmp_path_factory.mktemp("slurm-run")
    profile = edited_profile(base / "profile")
    slurm = Run(copy_workflow(base / "copy"), run.resources, ("--profile", str(profile)))
    controller = start(slurm)
    wait_for(lambda: "finetune" in running_rules(), "a training job to run")
    time.sleep(3 * 2)  # a few status checks: every job that ended before now is registered as finished
    finished = outputs_with_times(slurm)
    os.killpg(controller.pid, signal.SIGKILL)
    controller.wait()
    subprocess.run(["scancel", "--user", "root"], check=True)
    wait_for(queue_is_empty, "the cancelled jobs to leave the queue")
    slurm.snakemake("--unlock")
    slurm.snakemake()
    return slurm, finished, outputs_with_times(slurm)


def test_a_rerun_after_the_controller_was_killed_recomputes_nothing_that_had_finished(slurm_run):
    _, before, after = slurm_run
    assert any(path.startswith("test/categories/base/") for path in before)  # the kill came mid-run
    redone = sorted(path for path, mtime in before.items() if after.get(path) != mtime)
    assert redone == []
    assert len(after) > len(before)


def test_gpu_rules_ran_in_the_gpu_partition_with_a_gpu_and_quick_rules_were_not_submitted(slurm_run):
    slurm, _, _ = slurm_run
    jobs = [job for job in slurm_jobs() if job["WorkDir"] == str(slurm.workdir)]  # not another test's run
    rules = {rule_of(job) for job in jobs}
    assert GPU_RULES <= rules and rules & LOCAL_RULES == set()
    for job in jobs:
        holds_gpu = job.get("TresPerJob") == "gres:gpu:1"
        if rule_of(job) in GPU_RULES:
            assert (job["Partition"], holds_gpu) == ("gpu", True), job
        else:
            assert (job["Partition"], holds_gpu) == ("cpu", False), job


def test_the_slurm_run_gives_the_local_runs_categories_and_tables(slurm_run, run):
    slurm, _, _ = slurm_run
    for folder in ("categories", "tables", "evaluation"):
        local = sorted(
            p.relative_to(run.workdir) for p in (run.workdir / "results" / "test" / folder).rglob("*.parquet")
        )
        assert local == sorted(
            p.relative_to(slurm.workdir) for p in (slurm.workdir / "results" / "test" / folder).rglob("*.parquet")
        )
        for path in local:
            expected, got = (pd.read_parquet(root / path) for root in (run.workdir, slurm.workdir))
            timing = [column for column in ("seconds", "train_tokens_per_second") if column in expected]
            pd.testing.assert_frame_equal(got.drop(columns=timing), expected.drop(columns=timing), obj=str(path))


def test_gpu_jobs_given_two_gpus_run_once_as_one_task_holding_both(cluster, smollm2, resources_dir, tmp_path):
    """`training.gpus: 2` and `generation.gpus: 2` on the cluster's two fake GPUs (the scripts run on
    CPU): each GPU job is one SLURM job of one task holding both, whose script ran once (its SLURM log
    holds one run of the rule); the training recorded both. The profile sets `tasks` for every job,
    which alone would make a job one task per GPU (the executor plugin's --ntasks-per-gpu). Only
    stage 1 and what it needs run, on the unit tests' model."""
    profile = edited_profile(tmp_path / "profile")
    settings = yaml.safe_load((profile / "config.yaml").read_text())
    settings["default-resources"]["tasks"] = 1
    (profile / "config.yaml").write_text(yaml.safe_dump(settings))
    execution = ("--profile", str(profile), "--slurm-keep-successful-logs")
    slurm = Run(copy_workflow(tmp_path / "copy"), resources_dir, execution)
    metrics = slurm.paths.training_metrics("stage1")
    slurm.snakemake(slurm.relative(metrics), edit="training: {gpus: 2}\ngeneration: {gpus: 2}")
    jobs = [job for job in slurm_jobs() if rule_of(job) in GPU_RULES and job["WorkDir"] == str(slurm.workdir)]
    assert {rule_of(job) for job in jobs} == GPU_RULES
    for job in jobs:
        assert (job["NumTasks"], job["TresPerJob"], job["JobState"]) == ("1", "gres:gpu:2", "COMPLETED"), job
        assert Path(job["StdOut"]).read_text().count(f"localrule {rule_of(job)}:") == 1  # the run in the job step
    assert read_parquet_metadata(metrics)["gpus"] == ["0", "1"]


def test_a_cancelled_job_is_all_the_rerun_recomputes_with_what_depends_on_it(slurm_run, tmp_path):
    slurm, _, _ = slurm_run
    copy = slurm.copy(tmp_path / "copy")
    paths = copy.paths
    # as in a run that has not evaluated stage 2 yet: that shard and all that follows are missing
    for path in (
        paths.generations("stage2-s5", "eval", "test", 0),
        paths.evaluation("stage2-s5", "test"),
        paths.provenance(),
    ):
        Path(path).unlink()
    shutil.rmtree(Path(paths.table()).parent)
    controller = start(copy)
    comment = "rule_generate_wildcards_stage2-s5_eval_test_0"

    def shard_running() -> str | None:
        jobs = slurm_jobs()
        return next((j["JobId"] for j in jobs if j.get("Comment") == comment and j["JobState"] == "RUNNING"), None)

    wait_for(shard_running, "the evaluation shard to run")
    subprocess.run(["scancel", shard_running()], check=True)
    assert controller.wait(timeout=300) != 0  # the job failed, and with it the run
    expected = {"generate[stage2-s5/eval/test/0]", "score_evaluation[stage2-s5/test]"}
    expected |= {"tables", "provenance", "report", "all"}
    assert planned_jobs(copy.snakemake("-n").stdout) == expected
    copy.snakemake()
    assert planned_jobs(copy.snakemake("-n").stdout) == set()
