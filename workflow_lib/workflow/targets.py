"""Where every artifact lives, and which files a dataset's chain must produce.

The rules and the report read paths from here so the layout is defined once (docs/DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

CNN_BASELINES = ("resnet18", "tiny_resnet")
# Rule names that a dataset may not take, since every dataset also gets a target rule of its name.
RESERVED_NAMES = frozenset(
    {"all", "report", "stage_config", "raw_data", "prepare", "search", "train", "random_forest",
     "baseline_cnn", "random_search", "summarize"}
)


@dataclass(frozen=True)
class Layout:
    results: str
    checkpoints: str
    logs: str
    benchmarks: str = "benchmarks"

    @classmethod
    def from_config(cls, config: dict) -> "Layout":
        return cls(config["results_dir"], config["checkpoint_dir"], config["log_dir"])

    def stage(self, dataset: str = "{dataset}", stage: str = "{stage}") -> str:
        return f"{self.results}/{dataset}/config/{stage}.json"

    def manifest(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/raw/manifest.json"

    def prepared(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/data/prepared.npz"

    def search_dir(self, dataset: str = "{dataset}", seed: str = "{seed}") -> str:
        return f"{self.results}/{dataset}/search/seed{seed}"

    def method_dir(self, dataset: str = "{dataset}", method: str = "{method}", seed: str = "{seed}") -> str:
        return f"{self.results}/{dataset}/methods/{method}/seed{seed}"

    def metrics(self, dataset: str, method: str, seed: int | str) -> str:
        return f"{self.method_dir(dataset, method, str(seed))}/metrics.json"

    def summary(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/summary.json"

    def report(self) -> str:
        return f"{self.results}/report.html"

    def figures(self) -> str:
        return f"{self.results}/report/figures"

    def checkpoint(self, kind: str, dataset: str = "{dataset}", name: str = "{seed}") -> str:
        return f"{self.checkpoints}/{dataset}/{kind}/{name}"

    def log(self, dataset: str, step: str) -> str:
        return f"{self.logs}/{dataset}/{step}.log"

    def benchmark(self, dataset: str, step: str) -> str:
        return f"{self.benchmarks}/{dataset}/{step}.tsv"

    def dataset_metrics(self, config: dict, dataset: str) -> list[str]:
        """Every method's metrics file for every seed of one dataset."""
        methods = config["datasets"][dataset]["methods"]
        return [self.metrics(dataset, method, seed) for method in methods for seed in config["seeds"]]

    def search_outputs(self, config: dict, dataset: str) -> list[str]:
        if "darts" not in config["datasets"][dataset]["methods"]:
            return []
        return [f"{self.search_dir(dataset, str(seed))}/history.json" for seed in config["seeds"]]


@dataclass(frozen=True)
class RuleInputs:
    """Per-job values the rules compute from wildcards (resources, threads, inputs)."""

    config: dict
    layout: Layout

    def resource(self, wildcards, key: str):
        return self.config["datasets"][wildcards.dataset]["resources"][key]

    def gpu(self, wildcards) -> int:
        return self.resource(wildcards, "gpu")

    def threads(self, wildcards) -> int:
        return self.resource(wildcards, "threads")

    def mem_mb(self, wildcards) -> int:
        return self.resource(wildcards, "mem_mb")

    def runtime(self, wildcards) -> int:
        return self.resource(wildcards, "runtime")

    def train_genotype(self, wildcards) -> list[str] | str:
        """The search's genotype, unless the config names a published one (then no search is needed)."""
        if self.config["datasets"][wildcards.dataset]["train"]["genotype"]:
            return []
        return f"{self.layout.search_dir(wildcards.dataset, wildcards.seed)}/genotype.json"
