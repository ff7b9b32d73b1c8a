# Per-dataset summaries (the target that runs one dataset's whole chain), named dataset targets,
# and the HTML report.


rule summarize:
    input:
        metrics=lambda w: LAYOUT.dataset_metrics(CONFIG, w.dataset),
        search=lambda w: LAYOUT.search_outputs(CONFIG, w.dataset),
    output:
        LAYOUT.summary(),
    log:
        f"{LAYOUT.logs}/{{dataset}}/summarize.log",
    localrule: True
    shell:
        "python -m workflow_lib summarize --dataset {wildcards.dataset} --metrics {input.metrics}"
        " --out {output} > {log} 2>&1"


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
    output:
        html=report(LAYOUT.report(), caption="../report/captions/page.rst", category="Report"),
        figures=report(
            directory(LAYOUT.figures()),
            patterns=["{dataset}/{name}.svg"],
            caption="../report/captions/figures.rst",
            category="Figures",
        ),
    params:
        datasets=DATASETS,
        seeds=SEEDS,
        title=CONFIG["report"]["title"],
        benchmarks=LAYOUT.benchmarks,
    log:
        f"{LAYOUT.logs}/report.log",
    localrule: True
    shell:
        "python -m workflow_lib report --results-dir {LAYOUT.results} --datasets {params.datasets}"
        " --seeds {params.seeds} --title '{params.title}' --out {output.html} --figures-dir {output.figures}"
        " --benchmarks $(find {params.benchmarks} -name '*.tsv' 2>/dev/null) > {log} 2>&1"
