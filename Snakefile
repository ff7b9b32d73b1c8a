# DARTS architecture search and baselines, per dataset, with a results report.
# Thin on purpose: validate the config, include one .smk per stage, declare the targets.
# All logic lives in workflow_lib (see docs/DESIGN.md).

from snakemake.utils import min_version

from workflow_lib.workflow.snakefile_config import DEFAULT_CONFIG, check_yaml

min_version("9.0")


# The quick offline default, unless --configfile names another: a given file replaces it rather than
# being merged into it (Snakemake would otherwise mix the quick settings into, e.g., config/paper.yaml).
if not workflow.overwrite_configfiles:
    check_yaml(DEFAULT_CONFIG)

    configfile: DEFAULT_CONFIG


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/search.smk"
include: "rules/train.smk"
include: "rules/advantage.smk"
include: "rules/baselines.smk"
include: "rules/design.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        [LAYOUT.summary(dataset) for dataset in DATASETS],
        [
            path
            for dataset in DATASETS
            for path in LAYOUT.design_outputs(CONFIG, dataset)
        ],
        LAYOUT.report(),
