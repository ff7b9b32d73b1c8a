"""Where every artifact lives, which files a dataset's chain must produce, and what each rule passes on.

The rules and the report read paths from here so the layout is defined once (docs/DESIGN.md). Everything a
run writes, benchmarks included, lives under ``results_dir`` (checkpoints and logs in their own folders), so
two configs with different ``results_dir`` never mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow_lib.config.stage import stage_json
from workflow_lib.methods import CNN_BASELINES, DARTS, METHODS, SEARCH_ADVANTAGE, STEPS, step_of_method

# Rule names that a dataset may not take, since every dataset also gets a target rule of its name.
RULE_NAMES = frozenset({"all", "report", "raw_data", "prepare", "search", "train", "random_forest",
                        "baseline_cnn", "random_search", "fixed_cell", "select_cell", "summarize", "design_table", "design",
                        "design_pick", "design_simulate", "learning_curves", SEARCH_ADVANTAGE})
RESERVED_NAMES = RULE_NAMES | frozenset(METHODS) | frozenset(STEPS)


@dataclass(frozen=True)
class Layout:
    results: str
    checkpoints: str
    logs: str

    @classmethod
    def from_config(cls, config: dict) -> "Layout":
        return cls(config["results_dir"], config["checkpoint_dir"], config["log_dir"])

    @property
    def benchmarks(self) -> str:
        return f"{self.results}/benchmarks"

    def manifest(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/raw/manifest.json"

    def prepared(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/data/prepared.npz"

    def prepared_summary(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/data/prepared.json"

    def search_dir(self, dataset: str = "{dataset}", seed: str = "{seed}") -> str:
        return f"{self.results}/{dataset}/search/seed{seed}"

    def method_dir(self, dataset: str = "{dataset}", method: str = "{method}", seed: str = "{seed}") -> str:
        return f"{self.results}/{dataset}/methods/{method}/seed{seed}"

    def metrics(self, dataset: str, method: str, seed: int | str) -> str:
        return f"{self.method_dir(dataset, method, str(seed))}/metrics.json"

    def advantage_dir(self, dataset: str = "{dataset}", seed: str = "{seed}") -> str:
        return f"{self.results}/{dataset}/search_advantage/seed{seed}"

    def selection_dir(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/search/selection"

    def design_table(self, dataset: str = "{dataset}") -> str:
        return f"{self.design_dir(dataset)}/candidates.npz"

    def design_dir(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/design"

    def design_generation(self, dataset: str = "{dataset}", generation: str = "{generation}") -> str:
        """Command oracle: one generation's state.json, slots/ (designs per simulation job), batch{b}.csv."""
        return f"{self.design_dir(dataset)}/generations/gen{generation}"

    def design_journal(self, dataset: str = "{dataset}") -> str:
        """Command oracle: every simulator call (never a rule's output: reruns keep it; design/table.py)."""
        return f"{self.design_dir(dataset)}/simulations"

    def curves_dir(self, dataset: str = "{dataset}") -> str:
        return f"{self.results}/{dataset}/learning_curves"

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
        """``step`` is the step's name, with ``_seed{seed}`` for the seeded steps."""
        return f"{self.benchmarks}/{dataset}/{step}.tsv"

    # -- what one config asks for ------------------------------------------------------------------------
    def dataset_metrics(self, config: dict, dataset: str) -> list[str]:
        """Every method's metrics file for every seed of one dataset."""
        methods = config["datasets"][dataset]["methods"]
        return [self.metrics(dataset, method, seed) for method in methods for seed in config["seeds"]]

    def search_outputs(self, config: dict, dataset: str) -> list[str]:
        """The searches a dataset needs: none when darts is off or trains a named genotype."""
        if not runs_search(config, dataset):
            return []
        outputs = [f"{self.search_dir(dataset, str(seed))}/history.json" for seed in config["seeds"]]
        if config["datasets"][dataset]["selection"]["enabled"]:
            outputs.append(f"{self.selection_dir(dataset)}/selection.json")
        return outputs

    def advantage_outputs(self, config: dict, dataset: str) -> list[str]:
        """Each seed's advantage.json where the search advantage runs (see runs_advantage)."""
        if not runs_advantage(config, dataset):
            return []
        return [f"{self.advantage_dir(dataset, str(seed))}/advantage.json" for seed in config["seeds"]]

    def design_outputs(self, config: dict, dataset: str) -> list[str]:
        """The design loop's and learning curves' results, where the dataset enables them."""
        block = config["datasets"][dataset]
        outputs = []
        if block["design"]["enabled"]:
            outputs.append(f"{self.design_dir(dataset)}/design.json")
        if block["learning_curves"]["enabled"]:
            outputs.append(f"{self.curves_dir(dataset)}/learning_curves.json")
        return outputs

    def benchmark_files(self, config: dict, dataset: str) -> list[dict[str, str]]:
        """The benchmark files of the steps this config runs for one dataset: {dataset, step, seed, path}."""
        block = config["datasets"][dataset]
        steps = [step_of_method(method) for method in block["methods"]]
        if runs_search(config, dataset):
            steps.insert(0, "search")
        if runs_advantage(config, dataset):
            steps.append(SEARCH_ADVANTAGE)
        selection = [] if not block["selection"]["enabled"] else [
            {"dataset": dataset, "step": "select_cell", "seed": None, "path": self.benchmark(dataset, "select_cell")}]
        files = [{"dataset": dataset, "step": step, "seed": None, "path": self.benchmark(dataset, step)}
                 for step in ("raw_data", "prepare")]
        for step in steps:
            name = "train_darts" if step == "train" else step
            files += [{"dataset": dataset, "step": step, "seed": seed,
                       "path": self.benchmark(dataset, f"{name}_seed{seed}")} for seed in config["seeds"]]
        design = design_jobs(config, dataset) if block["design"]["enabled"] else []
        design += ["learning_curves"] if block["learning_curves"]["enabled"] else []
        return files + selection + [{"dataset": dataset, "step": step.split("_gen")[0], "seed": None,
                                     "path": self.benchmark(dataset, step)} for step in design]

    def report_plan(self, config: dict) -> str:
        """Everything the report reads, as JSON: it never lists folders, so it shows exactly this config."""
        datasets = {
            name: {"methods": list(block["methods"]), "search": runs_search(config, name),
                   SEARCH_ADVANTAGE: runs_advantage(config, name), "design": block["design"]["enabled"],
                   "learning_curves": block["learning_curves"]["enabled"]}
            for name, block in config["datasets"].items()
        }
        plan = {
            "datasets": datasets,
            "seeds": list(config["seeds"]),
            "title": config["report"]["title"],
            "benchmarks": [entry for name in datasets for entry in self.benchmark_files(config, name)],
        }
        return json.dumps(plan, sort_keys=True)


def design_seeds(config: dict, dataset: str) -> list[int]:
    return list(config["datasets"][dataset]["design"]["seeds"] or config["seeds"])


def design_slots(config: dict, dataset: str) -> list[int]:
    """Simulation jobs per generation of a command oracle (design.config.slot_counts)."""
    from workflow_lib.design.config import slot_counts

    return slot_counts(config["datasets"][dataset]["design"], len(design_seeds(config, dataset)))


def design_jobs(config: dict, dataset: str) -> list[str]:
    """The design loop's jobs as named in logs and benchmarks: design_pick_gen{g}, design_simulate_gen{g}_b{b}."""
    block = config["datasets"][dataset]
    if block["design"]["oracle"]["type"] == "lookup":
        return (["design_table"] if block["kind"] == "kirigami" else []) + ["design"]
    jobs = []
    for generation, slots in enumerate(design_slots(config, dataset)):
        jobs += [f"design_pick_gen{generation}", *(f"design_simulate_gen{generation}_b{b}" for b in range(slots))]
    return jobs + ["design"]


def simulation_retries(config: dict) -> int:
    """Retries of the simulation rule: the most any dataset's command oracle asks for (a job on its last
    attempt records its failures and succeeds, so a dataset never runs more attempts than it asked for)."""
    return max([block["design"]["oracle"]["retries"] for block in config["datasets"].values()
                if block["design"]["enabled"] and block["design"]["oracle"]["type"] == "command"], default=0)


def runs_search(config: dict, dataset: str) -> bool:
    block = config["datasets"][dataset]
    return DARTS in block["methods"] and not block["train"]["genotype"]


def runs_advantage(config: dict, dataset: str) -> bool:
    """The search advantage runs wherever the search runs, unless its block disables it."""
    return runs_search(config, dataset) and bool(config["datasets"][dataset][SEARCH_ADVANTAGE]["enabled"])


def source_files(config: dict, dataset: str) -> list[str]:
    """The user's data files a dataset reads (npz file, local MD file), so editing one reruns its chain."""
    source = config["datasets"][dataset]["source"]
    if source["type"] in ("npz", "md") and source["path"]:
        return [source["path"]]
    if source["type"] == "torchvision":
        from workflow_lib.datasets.cifar10 import local_batch_files

        return [str(path) for path in local_batch_files(Path(source["path"]) if source["path"] else None)]
    return []


@dataclass(frozen=True)
class RuleInputs:
    """Per-job values the rules compute from wildcards (settings, resources, threads, inputs)."""

    config: dict
    layout: Layout

    def settings(self, step: str):
        """params function: the step's settings as canonical JSON (Snakemake reruns the job when they change)."""
        return lambda wildcards: stage_json(self.config, wildcards.dataset, step)

    def method_settings(self, wildcards) -> str:
        return stage_json(self.config, wildcards.dataset, wildcards.method)

    def source_files(self, wildcards) -> list[str]:
        return source_files(self.config, wildcards.dataset)

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

    # -- the training steps that run in device.processes processes (workflow_lib.engine.launch) -------------
    @property
    def processes(self) -> int:
        return int(self.config["device"]["processes"])

    def training_threads(self, wildcards) -> int:
        """A training step's threads: the dataset's, at least one per process (each gets threads // processes)."""
        return max(self.threads(wildcards), self.processes)

    def training_gpu(self, wildcards) -> int:
        """A training step's GPUs: the dataset's, at least one per process on CUDA."""
        gpu = self.gpu(wildcards)
        cuda = self.config["device"]["type"] == "cuda"
        return max(gpu, self.processes) if cuda and self.processes > 1 else gpu

    @property
    def process_resources(self) -> dict[str, Any]:
        """The Slurm request of a training step of P > 1 processes (nothing for one): P tasks (``tasks``; on
        CUDA one per GPU, ``tasks_per_gpu``) of threads // P CPUs each, and ``mpi``, which makes the Slurm
        plugin run the step's command once, in the job's batch step, where the command starts its P processes
        with srun (a local run ignores these resources)."""
        if self.processes == 1:
            return {}
        resources: dict[str, Any] = {
            "tasks": self.processes,
            "mpi": "srun",
            "cpus_per_task": lambda wildcards: max(1, self.training_threads(wildcards) // self.processes),
        }
        if self.config["device"]["type"] == "cuda":
            resources["tasks_per_gpu"] = 1
        return resources

    def searched_genotype(self, wildcards, needed: bool) -> list[str] | str:
        """The first seed's searched cell when a design step needs it (no named genotype to use)."""
        if not needed:
            return []
        return f"{self.layout.search_dir(wildcards.dataset, str(self.config['seeds'][0]))}/genotype.json"

    # ---- the design loop -------------------------------------------------------------------------
    def _design(self, wildcards) -> dict:
        return self.config["datasets"][wildcards.dataset]["design"]

    def design_candidates(self, wildcards) -> str:
        """kirigami: the prepared data (its padding, the 29,791 patterns); npz: the fetch manifest (the file)."""
        if self.config["datasets"][wildcards.dataset]["kind"] == "kirigami":
            return self.layout.prepared(wildcards.dataset)
        return self.layout.manifest(wildcards.dataset)

    def _batches(self, dataset: str, generation: int) -> list[str]:
        slots = design_slots(self.config, dataset)[generation]
        return [f"{self.layout.design_generation(dataset, str(generation))}/batch{b}.csv" for b in range(slots)]

    def design_inputs(self, wildcards) -> dict:
        """The design rule: the candidates; lookup: kirigami's table; command: the last generation's results."""
        dataset, design = wildcards.dataset, self._design(wildcards)
        inputs = {"candidates": self.design_candidates(wildcards), "table": [], "state": [], "batches": []}
        if design["oracle"]["type"] == "lookup":
            if self.config["datasets"][dataset]["kind"] == "kirigami":
                inputs["table"] = self.layout.design_table(dataset)
            return inputs
        last = design["generations"]
        inputs["state"] = f"{self.layout.design_generation(dataset, str(last))}/state.json"
        inputs["batches"] = self._batches(dataset, last)
        return inputs

    def design_pick_inputs(self, wildcards) -> dict:
        """Generation g's pick job: the previous generation's state and simulation results."""
        generation = int(wildcards.generation)
        inputs = {"candidates": self.design_candidates(wildcards), "state": [], "batches": []}
        if generation > 0:
            inputs["state"] = f"{self.layout.design_generation(wildcards.dataset, str(generation - 1))}/state.json"
            inputs["batches"] = self._batches(wildcards.dataset, generation - 1)
        return inputs

    def design_slot_count(self, wildcards) -> int:
        return design_slots(self.config, wildcards.dataset)[int(wildcards.generation)]

    def oracle_resource(self, wildcards, key: str):
        return self._design(wildcards)["oracle"]["resources"][key]

    def curves_genotype(self, wildcards) -> list[str] | str:
        block = self.config["datasets"][wildcards.dataset]
        needed = "darts" in block["learning_curves"]["methods"] and not block["train"]["genotype"]
        return self.searched_genotype(wildcards, needed)

    def seeds(self, wildcards) -> str:
        return " ".join(str(seed) for seed in self.config["seeds"])

    def train_genotype(self, wildcards) -> list[str] | str:
        """The search's genotype (or the cell selected over the search seeds), unless the config names a
        published one (then no search is needed)."""
        block = self.config["datasets"][wildcards.dataset]
        if block["train"]["genotype"]:
            return []
        if block["selection"]["enabled"]:
            return f"{self.layout.selection_dir(wildcards.dataset)}/selected_genotype.json"
        return f"{self.layout.search_dir(wildcards.dataset, wildcards.seed)}/genotype.json"

    def search_genotypes(self, wildcards) -> list[str]:
        return [f"{self.layout.search_dir(wildcards.dataset, str(seed))}/genotype.json" for seed in self.config["seeds"]]


__all__ = ["CNN_BASELINES", "Layout", "RESERVED_NAMES", "RuleInputs", "runs_advantage", "runs_search",
           "source_files"]
