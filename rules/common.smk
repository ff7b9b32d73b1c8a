# Config validation (before any job runs), the output layout, wildcard constraints and helpers.

from workflow_lib.methods import CNN_BASELINES
from workflow_lib.workflow.snakefile_config import validated_config
from workflow_lib.workflow.targets import Layout, RuleInputs

CONFIG = validated_config(
    config,
    workflow.overwrite_configfiles,
    main_process=workflow.is_main_process,
    local_exec=workflow.local_exec,
    dryrun=workflow.dryrun,
)
DATASETS = list(CONFIG["datasets"])
SEEDS = CONFIG["seeds"]
LAYOUT = Layout.from_config(CONFIG)
RULES = RuleInputs(CONFIG, LAYOUT)


wildcard_constraints:
    dataset="|".join(DATASETS),
    seed=r"\d+",
    method="|".join(CNN_BASELINES),
