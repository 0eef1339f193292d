"""The whole categories workflow on configs/test.yaml with the real SmolLM2-135M-Instruct, on CPU."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, snakemake
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


def test_outputs_and_schemas(run):
    _, _, paths = run
    train = read(paths.questions("train"))
    assert len(train) == 3 * 8 and set(train["relation"]) == {"P17", "P36", "P50"}
    categories = read(paths.categories("base", "train"))
    assert list(categories.columns) == [
        "question_id", "relation", "n_greedy", "n_greedy_correct", "n_sampled", "n_sampled_correct", "category"
    ]
    assert sorted(categories["question_id"]) == sorted(train["question_id"])
    assert set(categories["category"]) <= set(CATEGORIES)
    counts = read(paths.category_counts("base", "train")).set_index("relation")
    assert counts.loc["Total", "Total"] == 24
    assert counts.loc[["P17", "P36", "P50"], "Total"].tolist() == [8, 8, 8]
    markdown = open(paths.category_counts("base", "train", "md")).read()
    assert "| relation" in markdown and "HighlyKnown" in markdown
    for split in ("dev", "test"):
        evaluation = read(paths.prompts("eval", split))
        assert len(evaluation) == len(read(paths.questions(split))) and set(evaluation["prompt_index"]) == {0}


def test_category_values(run):
    _, _, paths = run
    categories = read(paths.categories("base", "train"))
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
    categories = read(paths.categories("base", "train")).set_index("question_id")
    greedy_right = shards[shards["mode"] == "greedy"].groupby("question_id")["correct"].sum()
    assert greedy_right.sort_index().tolist() == categories["n_greedy_correct"].sort_index().tolist()
    assert not shards["answer"].str.contains("\n").any()


def test_rerun_recomputes_nothing_and_after_a_failed_shard_only_that_shard(run):
    workdir, args, paths = run
    assert "Nothing to be done" in snakemake(*args, "-n", cwd=workdir).stdout
    before = read(paths.categories("base", "train"))
    # as after a run that died in shard 1: that shard and everything downstream are missing
    lost = paths.generations("base", "detect", "train", 1)
    shutil.move(lost, lost + ".lost")
    for ext in ("parquet", "md"):
        Path(paths.category_counts("base", "train", ext)).unlink()
    Path(paths.categories("base", "train")).unlink()
    dry = snakemake(*args, "-n", cwd=workdir).stdout
    assert "generate" in dry and "shard=1" in dry and "shard=0" not in dry and "prepare_model" not in dry
    snakemake(*args, cwd=workdir)
    pd.testing.assert_frame_equal(read(lost), read(lost + ".lost"))  # same config, same outputs
    pd.testing.assert_frame_equal(read(paths.categories("base", "train")), before)
