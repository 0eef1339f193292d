"""download_dataset + prepare_dataset as rules, from a zip served as a local file (no network)."""

import hashlib
import shutil

import pandas as pd
from workflow import snakemake

from gradual import SAMPLE_DATASET
from gradual.download import dataset_spec
from gradual.shared import SPEC_FILE, shared_id


def zip_of_sample(folder):
    """The sample dataset zipped like the official archive: everything under dataset/."""
    shutil.copytree(SAMPLE_DATASET, folder / "zip-root" / "dataset")
    return shutil.make_archive(str(folder / "dataset"), "zip", folder / "zip-root")


def run_to_questions(workdir, url, sha256):
    config = workdir / "download.yaml"
    config.write_text(
        "run: dl\n"
        f"resources_dir: {workdir / 'res'}\n"
        "dataset:\n"
        "  source: download\n"
        "  name: sample-zip\n"
        f"  download: {{url: '{url}', sha256: '{sha256}', templates_url: null}}\n"
        "  relations: [P36, P50]\n"
    )
    target = "results/dl/data/train.parquet"
    return snakemake("--configfile", str(config), "--cores", "1", target, cwd=workdir, check=False), workdir / target


def test_download_rule_checks_and_unpacks(workdir):
    archive = zip_of_sample(workdir)
    digest = hashlib.sha256(open(archive, "rb").read()).hexdigest()
    done, train = run_to_questions(workdir, f"file://{archive}", digest)
    assert done.returncode == 0, done.stdout + done.stderr
    questions = pd.read_parquet(train)
    assert set(questions["relation"]) == {"P36", "P50"}
    assert questions["subject"].notna().all()  # the templates came with the zip
    folder = workdir / "res" / "datasets" / shared_id("sample-zip", dataset_spec(f"file://{archive}", digest))
    assert sorted(p.name for p in folder.iterdir()) == ["dataset", SPEC_FILE]  # the zip itself is not kept
    assert (folder / "dataset" / "train").is_dir()


def test_download_rule_refuses_a_wrong_checksum(workdir):
    archive = zip_of_sample(workdir)
    done, train = run_to_questions(workdir, f"file://{archive}", "0" * 64)
    assert done.returncode != 0
    assert "the config expects " + "0" * 64 in done.stdout + done.stderr
    assert not train.exists()
    assert [p.name for p in (workdir / "res" / "datasets").iterdir() if not p.name.endswith(".lock")] == []
