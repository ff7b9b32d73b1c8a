# Per-dataset summaries (the target that runs one dataset's whole chain), named dataset targets,
# and the HTML report.

import os


rule summarize:
    input:
        metrics=lambda w: LAYOUT.dataset_metrics(CONFIG, w.dataset),
        search=lambda w: LAYOUT.search_outputs(CONFIG, w.dataset),
        advantage=lambda w: LAYOUT.advantage_outputs(CONFIG, w.dataset),
    output:
        LAYOUT.summary(),
    log:
        LAYOUT.log("{dataset}", "summarize"),
    localrule: True
    conda:
        "envs/workflow.yaml"
    shell:
        "python -m workflow_lib summarize --dataset {wildcards.dataset} --metrics {input.metrics}"
        " --advantage {input.advantage} --out {output} > {log} 2>&1"


for _dataset in DATASETS:

    rule:
        name:
            _dataset
        input:
            LAYOUT.summary(_dataset),
        localrule: True


rule report:
    input:
        summaries=[LAYOUT.summary(dataset) for dataset in DATASETS],
        data=[LAYOUT.prepared_summary(dataset) for dataset in DATASETS],
        metrics=[
            path
            for dataset in DATASETS
            for path in LAYOUT.dataset_metrics(CONFIG, dataset)
        ],
        searches=[
            path
            for dataset in DATASETS
            for path in LAYOUT.search_outputs(CONFIG, dataset)
        ],
        design=[
            path
            for dataset in DATASETS
            for path in LAYOUT.design_outputs(CONFIG, dataset)
        ],
        advantage=[
            path
            for dataset in DATASETS
            for path in LAYOUT.advantage_outputs(CONFIG, dataset)
        ],
    output:
        html=report(
            LAYOUT.report(), caption="../report/captions/page.rst", category="Report"
        ),
        figures=report(
            directory(LAYOUT.figures()),
            patterns=["{dataset}/{kind}/{name}.png", "{dataset}/{kind}/{name}.svg"],
            caption="../report/captions/figures.rst",
            category="{dataset}",
            subcategory="{kind}",
        ),
    log:
        f"{LAYOUT.logs}/report.log",
    localrule: True
    conda:
        "envs/workflow.yaml"
    params:
        plan=LAYOUT.report_plan(CONFIG),
        results=lambda w, output: os.path.dirname(output.html),
    shell:
        "python -m workflow_lib report --results-dir {params.results} --plan {params.plan:q}"
        " --out {output.html} --figures-dir {output.figures} > {log} 2>&1"
