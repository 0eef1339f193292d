"""The whole method on configs/test.yaml with the real SmolLM2-135M-Instruct, on CPU: categories,
two LoRA stages, re-detection, evaluation and the tables."""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from workflow import ROOT, snakemake
from gradual.categories import CATEGORIES, categorize
from gradual.paths import Layout

N_PROMPTS, N_SAMPLES = 2, 2  # configs/test.yaml


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One full run in a fresh folder, with a fresh resources/ so prepare_model runs for real."""
    workdir = tmp_path_factory.mktemp("run")
    for name in ("configs", "config.yaml"):
        (workdir / name).symlink_to(ROOT / name)
    resources = workdir / "fresh-resources"
    args = ("--configfile", "configs/test.yaml", "--config", f"resources_dir={resources}", "--cores", "2")
    snakemake(*args, cwd=workdir)
    return workdir, args, Layout(results=str(workdir / "results" / "test"), resources=str(resources))


def read(path):
    return pd.read_parquet(path)


def relative(path, workdir) -> str:
    """A target as Snakemake names it: relative to the working directory."""
    return str(Path(path).relative_to(workdir))


def test_outputs_and_schemas(run):
    _, _, paths = run
    train = read(paths.questions("train"))
    assert len(train) == 3 * 8 and set(train["relation"]) == {"P17", "P36", "P50"}
    categories = read(paths.categories("base", "detect", "train"))
    assert list(categories.columns) == [
        "question_id", "relation", "n_greedy", "n_greedy_correct", "n_sampled", "n_sampled_correct", "category"
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


def test_category_values(run):
    _, _, paths = run
    categories = read(paths.categories("base", "detect", "train"))
    questions = read(paths.questions("train")).set_index("question_id")
    assert (categories["n_greedy"] == N_PROMPTS).all()
    never_right = categories["n_greedy_correct"] == 0
    # only questions no greedy answer got right are sampled, each prompt N_SAMPLES times
    assert (categories.loc[never_right, "n_sampled"] == N_PROMPTS * N_SAMPLES).all()
    assert (categories.loc[~never_right, "n_sampled"] == 0).all()
    assert categories["category"].tolist() == categorize(categories).tolist()
    by_question = categories.set_index(questions.loc[categories["question_id"], "question"].to_numpy())["category"]
    assert by_question["What is the capital of France?"] == "HighlyKnown"  # answered Paris in every prompt


def test_generations_agree_with_the_counts(run):
    _, _, paths = run
    shards = pd.concat([read(paths.generations("base", "detect", "train", s)) for s in range(2)])
    categories = read(paths.categories("base", "detect", "train")).set_index("question_id")
    greedy_right = shards[shards["mode"] == "greedy"].groupby("question_id")["correct"].sum()
    assert greedy_right.sort_index().tolist() == categories["n_greedy_correct"].sort_index().tolist()
    assert not shards["answer"].str.contains("\n").any()


def test_a_finished_run_has_nothing_to_do(run):
    workdir, args, _ = run
    assert "Nothing to be done" in snakemake(*args, "-n", cwd=workdir).stdout


def test_tables_have_the_papers_shape(run):
    _, _, paths = run
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
    assert metrics[["dev_accuracy", "test_accuracy"]].stack().between(0, 1).all()
    assert metrics.groupby("state")["best"].sum().tolist() == [1, 1, 1]
    for name in ("table7-accuracy", "table3-minus-table4", "table11-rounds", "table12-transitions-stage2"):
        assert Path(paths.table(name, "md")).read_text().startswith("|")


def test_stage2_continues_stage1_into_a_different_adapter(run):
    _, _, paths = run
    stage1, stage2 = (load_file(Path(paths.adapter(s)) / "adapter_model.safetensors") for s in ("stage1", "stage2-s5"))
    assert stage1.keys() == stage2.keys()
    assert any(not torch.equal(stage1[k], stage2[k]) for k in stage1)
    config = json.loads((Path(paths.adapter("stage2-s5")) / "adapter_config.json").read_text())
    assert config["r"] == 8


def test_finetune_resumes_from_its_last_saved_epoch(run):
    workdir, args, paths = run
    before = read(paths.training_metrics("stage2-s5"))
    shutil.rmtree(paths.adapter("stage2-s5"))
    Path(paths.training_metrics("stage2-s5")).unlink()
    shutil.rmtree(Path(paths.checkpoints("stage2-s5")) / "epoch-2")  # as if killed during epoch 2
    snakemake(*args, relative(paths.training_metrics("stage2-s5"), workdir), cwd=workdir)
    log = (workdir / "logs" / "test" / "finetune" / "stage2-s5.log").read_text()
    assert "resuming after epoch 1" in log
    after = read(paths.training_metrics("stage2-s5"))
    assert after["epoch"].tolist() == [1, 2]
    pd.testing.assert_frame_equal(after.iloc[:1], before.iloc[:1])  # epoch 1 was not trained again


def test_after_a_failed_shard_only_that_shard_is_generated_again(run):
    workdir, args, paths = run
    target = relative(paths.categories("base", "detect", "train"), workdir)
    before = read(paths.categories("base", "detect", "train"))
    # as after a run that died in shard 1: that shard and everything downstream are missing
    lost = paths.generations("base", "detect", "train", 1)
    shutil.move(lost, lost + ".lost")
    for ext in ("parquet", "md"):
        Path(paths.category_counts("base", "detect", "train", ext)).unlink()
    Path(paths.categories("base", "detect", "train")).unlink()
    dry = snakemake(*args, "-n", target, cwd=workdir).stdout
    assert "generate" in dry and "shard=1" in dry and "shard=0" not in dry and "prepare_model" not in dry
    snakemake(*args, target, cwd=workdir)
    pd.testing.assert_frame_equal(read(lost), read(lost + ".lost"))  # same config, same outputs
    pd.testing.assert_frame_equal(read(paths.categories("base", "detect", "train")), before)
