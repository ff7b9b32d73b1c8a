# Config validation (before any job runs), the output layout, wildcard constraints and helpers.

import os

from snakemake.exceptions import WorkflowError

from workflow_lib.config import ConfigError, load_config
from workflow_lib.config.stage import stage_document
from workflow_lib.workflow.targets import (
    CNN_BASELINES,
    RESERVED_NAMES,
    Layout,
    RuleInputs,
)

try:
    CONFIG = load_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None

DATASETS = list(CONFIG["datasets"])
_clashes = sorted(set(DATASETS) & RESERVED_NAMES)
if _clashes:
    raise WorkflowError(
        f"invalid configuration: dataset name(s) {_clashes} clash with rule names; rename the datasets: block"
    )
SEEDS = CONFIG["seeds"]
LAYOUT = Layout.from_config(CONFIG)
RULES = RuleInputs(CONFIG, LAYOUT)


wildcard_constraints:
    dataset="|".join(DATASETS),
    seed=r"\d+",
    stage="data|search|train|random_forest|resnet18|tiny_resnet|random_search",
    method="|".join(CNN_BASELINES),
