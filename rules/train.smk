# Final training of the discovered cell (or a named genotype from config), per seed.


def train_genotype(wildcards):
    """The search's genotype, unless the config names a published one (then no search is needed)."""
    if CONFIG["datasets"][wildcards.dataset]["train"]["genotype"]:
        return []
    return f"{LAYOUT.search_dir(wildcards.dataset, wildcards.seed)}/genotype.json"


rule train:
    input:
        stage=LAYOUT.stage(stage="train"),
        data=LAYOUT.prepared(),
        genotype=train_genotype,
    output:
        metrics=f"{LAYOUT.method_dir(method='darts')}/metrics.json",
        curves=f"{LAYOUT.method_dir(method='darts')}/curves.csv",
        predictions=f"{LAYOUT.method_dir(method='darts')}/predictions.csv",
    params:
        out=LAYOUT.method_dir(method="darts"),
        checkpoints=LAYOUT.checkpoint("train", name="seed{seed}"),
        genotype=lambda w, input: f"--genotype {input.genotype}" if input.genotype else "",
    log:
        f"{LAYOUT.logs}/{{dataset}}/train_darts_seed{{seed}}.log",
    benchmark:
        f"{LAYOUT.benchmarks}/{{dataset}}/train_darts_seed{{seed}}.tsv"
    threads: threads_of
    resources:
        gpu=gpu_resources,
        mem_mb=lambda w: resources_of(w.dataset, "mem_mb"),
        runtime=lambda w: resources_of(w.dataset, "runtime"),
    retries: 2
    shell:
        "python -m workflow_lib train --stage {input.stage} --data {input.data} {params.genotype}"
        " --out {params.out} --checkpoint-dir {params.checkpoints} --seed {wildcards.seed}"
        " --threads {threads} > {log} 2>&1"
