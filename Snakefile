# DARTS architecture search and baselines, per dataset, with a results report.
# Thin on purpose: validate the config, include one .smk per stage, declare the targets.
# All logic lives in workflow_lib (see docs/DESIGN.md).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/search.smk"
include: "rules/train.smk"
include: "rules/baselines.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        [LAYOUT.summary(dataset) for dataset in DATASETS],
        LAYOUT.report(),
