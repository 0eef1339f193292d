"""Every file path of a run, in one place. Called with no arguments a method gives the
Snakemake pattern (with {wildcards}); called with values it gives the concrete path."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    results: str
    resources: str

    @classmethod
    def for_config(cls, config: dict) -> "Layout":
        return cls(results=f"results/{config['run']}", resources=config["resources_dir"])

    def shared_dataset(self, dataset_id: str) -> str:
        """A downloaded dataset, shared by runs: not a rule output (see gradual.shared)."""
        return f"{self.resources}/datasets/{dataset_id}"

    def dataset_manifest(self, dataset_id="{name}") -> str:
        return f"{self.results}/datasets/{dataset_id}.json"

    def shared_model(self, model_id: str) -> str:
        """A converted or downloaded model, shared by runs: not a rule output (see gradual.shared)."""
        return f"{self.resources}/models/{model_id}"

    def model_manifest(self, model_id="{model}") -> str:
        return f"{self.results}/models/{model_id}.json"

    def questions(self, split="{split}") -> str:
        return f"{self.results}/data/{split}.parquet"

    def dataset_summary(self) -> str:
        return f"{self.results}/data/summary.json"

    def prompts(self, prompt_set="{prompt_set}", split="{split}") -> str:
        return f"{self.results}/prompts/{prompt_set}/{split}.parquet"

    def generations(self, state="{state}", prompt_set="{prompt_set}", split="{split}", shard="{shard}") -> str:
        return f"{self.results}/generations/{state}/{prompt_set}/{split}/shard-{shard}.parquet"

    def categories(self, state="{state}", prompt_set="{prompt_set}", split="{split}") -> str:
        return f"{self.results}/categories/{state}/{prompt_set}/{split}.parquet"

    def category_counts(self, state="{state}", prompt_set="{prompt_set}", split="{split}", ext="parquet") -> str:
        return f"{self.results}/categories/{state}/{prompt_set}/{split}.counts.{ext}"

    def training_pairs(self, state="{state}") -> str:
        return f"{self.results}/training/{state}/pairs.parquet"

    def replay_pool(self, state="{state}") -> str:
        return f"{self.results}/training/{state}/replay-pool.parquet"

    def trained_examples(self, state="{state}") -> str:
        """What a fine-tuning trains on, epoch by epoch (its pairs and that epoch's replay draw)."""
        return f"{self.results}/training/{state}/examples.parquet"

    def dev_scores(self, state="{state}") -> str:
        """Every epoch's dev answers right or wrong, per question: how sure the choice of epoch is."""
        return f"{self.results}/training/{state}/dev-scores.parquet"

    def training_metrics(self, state="{state}") -> str:
        return f"{self.results}/training/{state}/metrics.parquet"

    def checkpoints(self, state="{state}") -> str:
        """Epoch checkpoints: not a rule output, so a failed job does not delete them and a rerun resumes."""
        return f"{self.results}/checkpoints/{state}"

    def adapter(self, state="{state}") -> str:
        return f"{self.results}/adapters/{state}"

    def evaluation(self, state="{state}", split="{split}") -> str:
        return f"{self.results}/evaluation/{state}/{split}.parquet"

    def table(self, name="{table}", ext="parquet") -> str:
        return f"{self.results}/tables/{name}.{ext}"

    def graph(self, kind="{kind}") -> str:
        """The entity graph of the train questions as `edges` and `nodes` lists (see gradual.graph)."""
        return f"{self.results}/graph/{kind}.parquet"

    def provenance(self) -> str:
        return f"{self.results}/provenance.json"

    def report_page(self) -> str:
        return f"{self.results}/report/index.html"

    def report_figure(self, name="{figure}") -> str:
        return f"{self.results}/report/figures/{name}.png"

    def logs(self) -> str:
        """The folder of the run's logs and benchmark files."""
        return f"logs/{self.results.removeprefix('results/')}"

    def log(self, step: str, *wildcards: str) -> str:
        """logs/<run>/<step>[/{w1}/{w2}...].log: every wildcard of the rule, so no two jobs share a log."""
        return self._job_file(step, wildcards, "log")

    def benchmark(self, step: str, *wildcards: str) -> str:
        return self._job_file(step, wildcards, "benchmark.tsv")

    def _job_file(self, step: str, wildcards: tuple[str, ...], ext: str) -> str:
        return "/".join([f"{self.logs()}/{step}", *(f"{{{w}}}" for w in wildcards)]) + f".{ext}"
