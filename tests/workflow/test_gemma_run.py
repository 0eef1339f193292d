"""configs/test.yaml with a second model family, Gemma 3 270M (configs/model-gemma3-270m.yaml), through
the whole workflow: detection with sampling, two LoRA stages with the adapter merged for generation,
re-detection, evaluation, the tables and the report."""

import json

import pandas as pd
from workflow import Run, copy_workflow

from gradual.categories import CATEGORIES


def test_the_whole_method_runs_on_gemma3(gemma3, resources_dir, tmp_path):
    copy = Run(copy_workflow(tmp_path / "copy"), resources_dir)  # the model the unit tests converted
    copy.snakemake(edit=(copy.workdir / "configs" / "model-gemma3-270m.yaml").read_text() + "run: test-gemma3")
    results = copy.workdir / "results" / "test-gemma3"
    base = pd.read_parquet(results / "categories/base/detect/train.parquet")
    assert len(base) == 24 and set(base["category"]) <= set(CATEGORIES)
    assert base.loc[base["n_greedy_correct"] == 0, "n_sampled"].gt(0).all()  # the never-right questions sampled
    adapter = json.loads((results / "adapters/stage2-s5/adapter_config.json").read_text())
    assert adapter["r"] == 8 and "gemma3-270m" in adapter["base_model_name_or_path"]
    projections = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert projections <= set(adapter["target_modules"])  # all-linear: attention and MLP
    for state in ("stage1", "stage2-s5"):
        assert len(pd.read_parquet(results / f"categories/{state}/detect/train.parquet")) == 24
        assert pd.read_parquet(results / f"evaluation/{state}/test.parquet")["correct"].notna().all()
    assert pd.read_parquet(results / "tables/table7-accuracy.parquet")["model"].tolist() == [
        "untuned", "one-stage", "two-stage"
    ]  # fmt: skip
    provenance = json.loads((results / "provenance.json").read_text())
    assert provenance["config"]["model"]["name"] == "gemma3-270m"
    assert (results / "report/index.html").read_text().count("<img ") >= 5
