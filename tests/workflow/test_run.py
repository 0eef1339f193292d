"""The whole method on configs/test.yaml with the real SmolLM2-135M-Instruct, on CPU: categories,
two LoRA stages, re-detection, evaluation and the tables; then what a researcher does next with a
finished run (edit the config, move the folder, kill a run) and what Snakemake must redo for it."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from workflow import MODEL_ID, SNAKEMAKE, Run, copy_workflow, planned_jobs

from gradual.accelerator import dtype_name, resolve_dtype
from gradual.categories import CATEGORIES, categorize
from gradual.detection import score
from gradual.method import EXAMPLE_COLUMNS, replay_count

N_PROMPTS, N_SAMPLES = 2, 2  # configs/test.yaml


def read(path):
    return pd.read_parquet(path)


def test_outputs_and_schemas(run):
    paths = run.paths
    train = read(paths.questions("train"))
    assert len(train) == 3 * 8 and set(train["relation"]) == {"P17", "P36", "P50"}
    categories = read(paths.categories("base", "detect", "train"))
    assert list(categories.columns) == [
        "question_id",
        "relation",
        "n_greedy",
        "n_greedy_correct",
        "n_sampled",
        "n_sampled_correct",
        "category",
    ]
    assert sorted(categories["question_id"]) == sorted(train["question_id"])
    assert set(categories["category"]) <= set(CATEGORIES)
    counts = read(paths.category_counts("base", "detect", "train")).set_index("relation")
    assert counts.loc["Total", "Total"] == 24
    assert counts.loc[["P17", "P36", "P50"], "Total"].tolist() == [8, 8, 8]
    markdown = open(paths.category_counts("base", "detect", "train", "md")).read()
    assert "| relation" in markdown and "HighlyKnown" in markdown
    for split in ("dev", "test"):
        evaluation = read(paths.prompts("eval", split))
        assert len(evaluation) == len(read(paths.questions(split))) and set(evaluation["prompt_index"]) == {0}
    summary = json.loads(Path(paths.dataset_summary()).read_text())
    assert summary["splits"]["train"]["kept"] == 24 and summary["relations"] == ["P17", "P36", "P50"]
    manifest = json.loads(Path(paths.model_manifest(MODEL_ID)).read_text())
    assert manifest["path"] == paths.shared_model(MODEL_ID) and manifest["spec"]["dtype"] == "float32"


def test_provenance_records_the_dtype_each_job_ran_in(run):
    """compute_dtype auto, resolved as on this machine, for every generation shard and training job."""
    provenance = json.loads(Path(run.paths.provenance()).read_text())
    expected = dtype_name(resolve_dtype("auto", "cpu"))
    assert provenance["config"]["model"]["compute_dtype"] == "auto"
    assert provenance["training"] and provenance["generation"]
    assert {job["dtype"] for job in provenance["training"].values()} == {expected}
    assert {job["device"] for job in provenance["training"].values()} == {"cpu"}
    assert {job["dtype"] for job in provenance["generation"].values()} == {expected}


def test_category_values(run):
    paths = run.paths
    categories = read(paths.categories("base", "detect", "train"))
    questions = read(paths.questions("train")).set_index("question_id")
    assert (categories["n_greedy"] == N_PROMPTS).all()
    never_right = categories["n_greedy_correct"] == 0
    # only questions no greedy answer got right are sampled, each prompt N_SAMPLES times, except
    # that sampling until correct stops after the first wave (N_SAMPLES // 4, at least 1) with a right one
    unknown = categories["category"] == "Unknown"
    assert (categories.loc[unknown, "n_sampled"] == N_PROMPTS * N_SAMPLES).all()
    first_wave_right = categories["n_sampled_correct"] > 0
    stopped = categories.loc[never_right & first_wave_right, "n_sampled"]
    assert stopped.isin([N_PROMPTS * max(1, N_SAMPLES // 4), N_PROMPTS * N_SAMPLES]).all()
    assert (categories.loc[~never_right, "n_sampled"] == 0).all()
    assert categories["category"].tolist() == categorize(categories).tolist()
    by_question = categories.set_index(questions.loc[categories["question_id"], "question"].to_numpy())["category"]
    assert by_question["What is the capital of France?"] == "HighlyKnown"  # answered Paris in every prompt


def test_generations_hold_answers_and_scoring_gives_the_counts(run):
    paths = run.paths
    shards = pd.concat([read(paths.generations("base", "detect", "train", s)) for s in range(2)], ignore_index=True)
    assert list(shards.columns) == ["question_id", "prompt_index", "mode", "sample_index", "answer"]
    questions = read(paths.questions("train"))
    shards["correct"] = score(shards, dict(zip(questions["question_id"], questions["answers"])), "substring")
    categories = read(paths.categories("base", "detect", "train")).set_index("question_id")
    greedy_right = shards[shards["mode"] == "greedy"].groupby("question_id")["correct"].sum()
    assert greedy_right.sort_index().tolist() == categories["n_greedy_correct"].sort_index().tolist()
    assert not shards["answer"].str.contains("\n").any()


def test_tables_have_the_papers_shape(run):
    paths = run.paths
    n_train, n_test = 24, 9
    accuracy = read(paths.table("table7-accuracy"))
    assert accuracy["model"].tolist() == ["untuned", "one-stage", "two-stage"]
    assert accuracy["accuracy"].between(0, 1).all() and (accuracy["n"] == n_test).all()
    assert (accuracy["ci_low"] <= accuracy["accuracy"]).all() and (accuracy["accuracy"] <= accuracy["ci_high"]).all()
    for name in ("table3-transitions-stage1", "table4-transitions-retest"):
        transitions = read(paths.table(name)).set_index("origin")
        assert transitions.loc["Total", "Total"] == n_train, name
    stage1 = read(paths.table("table3-transitions-stage1"))
    assert "WeaklyOrUnknown" in stage1.columns  # re-detection without sampling merges the two
    assert set(stage1["origin"]) <= set(CATEGORIES) | {"Total"}  # the untuned model's own (sampled) categories
    paper5 = read(paths.table("table5-entity-graph"))
    assert paper5["relation"].tolist() == ["All", "P17", "P36", "P50"]
    assert (paper5["linked_reclassified"] <= paper5["reclassified"]).all()
    gain = read(paths.table("knowledge-gain"))
    assert set(gain["pairs"]) == {"all", "never trained on"} and set(gain["baseline"]) == {"untuned", "retest"}
    counts = read(paths.table("table10-category-counts")).set_index("stage")
    assert counts.index.tolist() == ["untuned", "stage 1", "stage 2"] and (counts["Total"] == n_train).all()
    by_category = read(paths.table("table9-accuracy-by-category")).set_index("category")
    assert by_category.loc["All", "n"] == n_test
    assert read(paths.table("table8-strategies"))["model"].tolist() == ["strategy 5"]
    sweep = read(paths.table("table6-epoch-sweep"))
    assert sweep["epochs"].tolist() == [1] and sweep["max_test_accuracy"].between(0, 1).all()
    metrics = read(paths.table("training-metrics"))
    assert sorted(set(metrics["state"])) == ["stage1", "stage2-s5", "sweep-e1"]
    assert metrics.groupby("state")["epoch"].apply(list).tolist() == [[1, 2], [1, 2], [1]]
    assert metrics["dev_accuracy"].between(0, 1).all()
    # test accuracy per epoch only where Table 6 reads it (the sweep); stage 1 and 2 are scored on test once
    tested = metrics.groupby("state")["test_accuracy"].apply(lambda scores: scores.between(0, 1).all())
    assert tested.to_dict() == {"stage1": False, "stage2-s5": False, "sweep-e1": True}
    assert metrics["test_accuracy"].isna().sum() == 4
    assert metrics.groupby("state")["best"].sum().tolist() == [1, 1, 1]
    for name in ("table7-accuracy", "table3-minus-table4", "table11-rounds", "table12-transitions-stage2"):
        assert Path(paths.table(name, "md")).read_text().startswith("|")


def test_each_epoch_trained_on_its_pairs_and_that_epochs_replay_draw(run):
    paths = run.paths
    pairs, pool = read(paths.training_pairs("stage2-s5")), read(paths.replay_pool("stage2-s5"))
    examples = read(paths.trained_examples("stage2-s5"))
    assert list(examples.columns) == EXAMPLE_COLUMNS and sorted(set(examples["epoch"])) == [1, 2]
    for _, epoch in examples.groupby("epoch"):
        assert epoch.loc[epoch["role"] == "target", "question_id"].tolist() == pairs["question_id"].tolist()
        replayed = epoch.loc[epoch["role"] == "replay", "question_id"]
        assert set(replayed) <= set(pool["question_id"]) and len(replayed) == replay_count(len(pool), 0.2)
    assert set(read(paths.trained_examples("stage1"))["role"]) == {"target"}  # stage 1 replays nothing


def test_a_control_and_a_second_seed_train_from_a_finished_run(run, tmp_path):
    """method.controls and training.seeds on configs/test.yaml: each a new state trained from the run's
    own stage 1 (the control) or from scratch (the seed), leaving the finished states alone."""
    copy = run.copy(tmp_path / "copy")
    paths = copy.paths
    edit = "method: {controls: [random]}\ntraining: {seeds: [0, 1]}"
    targets = [copy.relative(paths.training_metrics(state)) for state in ("stage2-random", "stage1-seed1")]
    planned = planned_jobs(copy.snakemake("-n", *targets, edit=edit).stdout)
    assert planned == {
        "training_pairs[stage2-random]", "finetune[stage2-random]",
        "training_pairs[stage1-seed1]", "finetune[stage1-seed1]",
    }  # fmt: skip
    copy.snakemake(*targets, edit=edit)
    examples = read(paths.trained_examples("stage2-random"))
    replayed = read(paths.trained_examples("stage2-s5")).groupby("epoch").size()
    assert examples.groupby("epoch").size().tolist() == replayed.tolist()  # as many as strategy 5, epoch by epoch
    after_stage1 = read(paths.categories("stage1", "detect", "train")).set_index("question_id")["category"]
    assert (after_stage1[examples["question_id"]] != "HighlyKnown").all()
    log = (copy.workdir / "logs" / "test" / "finetune" / "stage2-random.log").read_text()
    assert "starting from adapter" in log and "adapters/stage1" in log
    seed1 = read(paths.training_metrics("stage1-seed1"))
    assert (
        seed1["epoch"].tolist() == [1, 2]
        and "starting from adapter"
        not in (copy.workdir / "logs" / "test" / "finetune" / "stage1-seed1.log").read_text()
    )


def test_stage2_continues_stage1_into_a_different_adapter(run):
    paths = run.paths
    stage1, stage2 = (load_file(Path(paths.adapter(s)) / "adapter_model.safetensors") for s in ("stage1", "stage2-s5"))
    assert stage1.keys() == stage2.keys()
    assert any(not torch.equal(stage1[k], stage2[k]) for k in stage1)
    config = json.loads((Path(paths.adapter("stage2-s5")) / "adapter_config.json").read_text())
    assert config["r"] == 8


# --- what an edit reruns ------------------------------------------------------------------------


def generations(state, prompt_set, split):
    return {f"generate[{state}/{prompt_set}/{split}/{shard}]" for shard in (0, 1)}


def evaluated(state):
    """The jobs that score a trained state on the fixed test prompts."""
    return generations(state, "eval", "test") | {f"score_evaluation[{state}/test]"}


def redetected(state):
    """The jobs that categorise the train questions again for a trained state, and evaluate it (no
    table reads a trained state's test categories, so none are made); stage 1 also on its retest, the
    floor of Table 12 (fresh re-detection prompts, the default)."""
    jobs = generations(state, "detect", "train") | evaluated(state) | {f"assign_categories[{state}/detect/train]"}
    if state == "stage1":
        jobs |= generations(state, "retest", "train") | {f"assign_categories[{state}/retest/train]"}
    return jobs


def added(state):
    """The jobs of a state new to a finished run: its examples, training, own prompts, re-detection."""
    return {f"training_pairs[{state}]", f"finetune[{state}]", f"sample_prompts[detect-{state}/train]"} | redetected(
        state
    )


TABLES = {"tables", "provenance", "report", "all"}  # provenance records the whole config: every edit rewrites it
STAGE2 = {"finetune[stage2-s5]"} | redetected("stage2-s5") | TABLES
STAGE2_EXAMPLES = STAGE2 | {"training_pairs[stage2-s5]"}  # training_pairs draws every epoch's examples
# the retest is greedy only, like the re-detections it is the noise baseline of
UNTUNED_SAMPLING = generations("base", "detect", "train") | generations("base", "detect", "test")
EVERY_TRAINED_STATE = {
    f"{rule}[{state}]" for rule in ("training_pairs", "finetune") for state in ("stage1", "stage2-s5", "sweep-e1")
}
EVERY_TRAINED_STATE |= redetected("stage1") | redetected("stage2-s5") | evaluated("sweep-e1")
UNTUNED_SAMPLED_CATEGORIES = {f"assign_categories[base/detect/{split}]" for split in ("train", "test")}
UNTUNED_CATEGORIES = UNTUNED_SAMPLED_CATEGORIES | {"assign_categories[base/retest/train]"}

# One edit of configs/test.yaml -> exactly the jobs a dry run must plan (Snakemake's rule[wildcards]).
EDITS = {
    "nothing": ("", set()),
    # stage 2 onwards only
    "training.stage2": ("training: {stage2: {learning_rate: 1.0e-4}}", STAGE2),
    # only the stage that replays (strategy 5), its examples drawn again; not stage 1 nor the sweep
    "method.replay_ratio": ("method: {replay_ratio: 0.6}", STAGE2_EXAMPLES),
    # stage 1 and what follows it, not the sweep (it has its own epoch count)
    "training.stage1.epochs": (
        "training: {stage1: {epochs: 3}}",
        {"training_pairs[stage1]", "finetune[stage1]"} | redetected("stage1") | STAGE2_EXAMPLES,
    ),
    "training.stage2.epochs": ("training: {stage2: {epochs: 3}}", STAGE2_EXAMPLES),
    # the scoring of the held-out questions: the untuned model's test categories (and the samples they
    # pick), every evaluation, every training (it scores dev after each epoch), what follows
    "matching.test_answers": (
        "matching: {test_answers: any}",
        generations("base", "detect", "test")
        | {"assign_categories[base/detect/test]", "score_evaluation[base/test]"}
        | (EVERY_TRAINED_STATE - {"training_pairs[stage1]", "training_pairs[sweep-e1]"})
        | TABLES,
    ),
    # scoring and categories, and all that depends on them; of the untuned model's generations only
    # those that sample, since the matcher picks the questions that need samples
    "matching.mode": (
        "matching: {mode: exact}",
        UNTUNED_SAMPLING | UNTUNED_CATEGORIES | {"score_evaluation[base/test]"} | EVERY_TRAINED_STATE | TABLES,
    ),
    # the generations that sample, and what depends on their categories; not the greedy-only ones
    "generation.n_samples": (
        "generation: {n_samples: 3}",
        UNTUNED_SAMPLING | UNTUNED_SAMPLED_CATEGORIES | EVERY_TRAINED_STATE | TABLES,
    ),
    "generation.sample_until_correct": (
        "generation: {sample_until_correct: false}",
        UNTUNED_SAMPLING | UNTUNED_SAMPLED_CATEGORIES | EVERY_TRAINED_STATE | TABLES,
    ),
    # the re-detections on the untuned model's prompts (nothing new to sample) and stage 2, which
    # trains on stage 1's categories; not stage 1's training nor its retest
    "method.redetect_prompts": (
        "method: {redetect_prompts: same}",
        generations("stage1", "detect", "train") | {"assign_categories[stage1/detect/train]"} | STAGE2_EXAMPLES,
    ),
    # a control or a further seed adds its own states and touches nothing already trained
    "method.controls": ("method: {controls: [continue]}", added("stage2-continue") | TABLES),
    "training.seeds": ("training: {seeds: [0, 1]}", added("stage1-seed1") | added("stage2-s5-seed1") | TABLES),
    # the dtype the model runs in: every generation and training, and all that reads them; not the
    # data nor the prompts
    "model.compute_dtype": (
        "model: {compute_dtype: float32}",
        UNTUNED_SAMPLING
        | UNTUNED_CATEGORIES
        | generations("base", "retest", "train")
        | evaluated("base")
        | EVERY_TRAINED_STATE
        | TABLES,
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", EDITS)
def test_an_edit_reruns_exactly_what_it_changes(run, name):
    edit, expected = EDITS[name]
    done = run.snakemake("-n", edit=edit)
    assert planned_jobs(done.stdout) == expected, done.stdout[-3000:]


def test_a_moved_working_copy_reruns_nothing(run, tmp_path):
    moved = tmp_path / "elsewhere" / "moved-copy"
    shutil.move(run.workdir, moved)
    try:
        done = Run(moved, run.resources).snakemake("-n")
        assert planned_jobs(done.stdout) == set(), done.stdout[-3000:]
    finally:
        shutil.move(moved, run.workdir)


def test_a_second_working_copy_reuses_the_shared_model_and_leaves_it_in_place(run, tmp_path):
    folder = Path(run.paths.shared_model(MODEL_ID))
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    second = Run(copy_workflow(tmp_path / "clone", keep_times=False), run.resources)  # every script newer
    second.snakemake(second.relative(second.paths.model_manifest(MODEL_ID)))
    assert "reusing" in (second.workdir / "logs" / "test" / "prepare_model" / f"{MODEL_ID}.log").read_text()
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert sorted(p.name for p in (run.resources / "models").iterdir() if not p.name.startswith(".")) == [MODEL_ID]


def test_a_newer_model_script_reruns_only_its_manifest_and_the_report(run):
    script = run.workdir / "scripts" / "prepare_model.py"
    times = script.stat()
    os.utime(script)
    try:
        # and the report, which sums every job's time: the manifest's job writes its benchmark anew
        assert planned_jobs(run.snakemake("-n").stdout) == {f"prepare_model[{MODEL_ID}]", "report", "all"}
    finally:
        os.utime(script, ns=(times.st_atime_ns, times.st_mtime_ns))


# --- what a rerun redoes ------------------------------------------------------------------------


def test_finetune_resumes_from_its_last_saved_epoch(run, tmp_path):
    copy = run.copy(tmp_path / "copy")
    paths = copy.paths
    before = read(paths.training_metrics("stage2-s5"))
    shutil.rmtree(paths.adapter("stage2-s5"))
    Path(paths.training_metrics("stage2-s5")).unlink()
    shutil.rmtree(Path(paths.checkpoints("stage2-s5")) / "epoch-2")  # as if killed during epoch 2
    copy.snakemake(copy.relative(paths.training_metrics("stage2-s5")))
    log = (copy.workdir / "logs" / "test" / "finetune" / "stage2-s5.log").read_text()
    assert "resuming after epoch 1" in log
    after = read(paths.training_metrics("stage2-s5"))
    assert after["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(after.iloc[:1], before.iloc[:1])  # epoch 1 was not trained again


def test_an_edit_of_the_training_data_retrains_from_scratch_as_a_fresh_run_would(run, tmp_path):
    copy = run.copy(tmp_path / "copy")
    paths = copy.paths
    target = copy.relative(paths.training_metrics("stage2-s5"))
    edit = "method: {replay_ratio: 0.6}"
    copy.snakemake(target, edit=edit)
    log = (copy.workdir / "logs" / "test" / "finetune" / "stage2-s5.log").read_text()
    assert "belong to another training (changed: examples); starting over" in log
    retrained = load_file(Path(paths.adapter("stage2-s5")) / "adapter_model.safetensors")
    for folder in (paths.checkpoints("stage2-s5"), paths.adapter("stage2-s5")):
        shutil.rmtree(folder)
    Path(paths.training_metrics("stage2-s5")).unlink()
    copy.snakemake(target, edit=edit)
    fresh = load_file(Path(paths.adapter("stage2-s5")) / "adapter_model.safetensors")
    assert retrained.keys() == fresh.keys() and all(torch.equal(retrained[k], fresh[k]) for k in fresh)


def test_after_a_failed_shard_only_that_shard_is_generated_again(run, tmp_path):
    copy = run.copy(tmp_path / "copy")
    paths = copy.paths
    target = copy.relative(paths.categories("base", "detect", "train"))
    before = read(paths.categories("base", "detect", "train"))
    # as after a run that died in shard 1: that shard and everything downstream are missing
    lost = paths.generations("base", "detect", "train", 1)
    shutil.move(lost, lost + ".lost")
    for ext in ("parquet", "md"):
        Path(paths.category_counts("base", "detect", "train", ext)).unlink()
    Path(paths.categories("base", "detect", "train")).unlink()
    assert planned_jobs(copy.snakemake("-n", target).stdout) == {
        "generate[base/detect/train/1]",
        "assign_categories[base/detect/train]",
    }
    copy.snakemake(target)
    pd.testing.assert_frame_equal(read(lost), read(lost + ".lost"))  # same config, same outputs
    pd.testing.assert_frame_equal(read(paths.categories("base", "detect", "train")), before)


def test_the_documented_resume_works_after_the_controller_is_killed(run, tmp_path):
    """A run killed with SIGKILL (an out-of-memory kill, a lost login node) leaves Snakemake's lock
    behind; README's resume (unlock, then the same command) finishes it."""
    copy = run.copy(tmp_path / "copy")
    paths = copy.paths
    target = copy.relative(paths.categories("base", "detect", "train"))
    lost = paths.generations("base", "detect", "train", 1)
    expected = read(lost)
    for path in (lost, paths.categories("base", "detect", "train")):
        Path(path).unlink()
    job_log = copy.workdir / "logs" / "test" / "generate" / "base" / "detect" / "train" / "1.log"
    job_log.unlink()  # the finished run's
    command = [*SNAKEMAKE, "--snakefile", str(copy.workdir / "Snakefile"), target, *copy.args]
    controller = subprocess.Popen(command, cwd=copy.workdir, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (job_log.is_file() and "shard 1" in job_log.read_text()):
        assert controller.poll() is None and time.monotonic() < deadline, "the generate job never started"
        time.sleep(0.2)
    os.killpg(controller.pid, signal.SIGKILL)  # the controller and its job, mid-generation
    controller.wait()

    again = copy.snakemake(target, check=False)
    assert again.returncode != 0 and "LockException" in again.stdout + again.stderr
    copy.snakemake("--unlock")
    copy.snakemake(target)
    pd.testing.assert_frame_equal(read(lost), expected)
