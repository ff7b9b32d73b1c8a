# Final training of the discovered cell (or a named genotype from config), per seed.


rule train:
    input:
        data=LAYOUT.prepared(),
        genotype=RULES.train_genotype,
    output:
        metrics=f"{LAYOUT.method_dir(method='darts')}/metrics.json",
        curves=f"{LAYOUT.method_dir(method='darts')}/curves.csv",
        predictions=f"{LAYOUT.method_dir(method='darts')}/predictions.csv",
    log:
        LAYOUT.log("{dataset}", "train_darts_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "train_darts_seed{seed}")
    priority: 20
    conda:
        "envs/workflow.yaml"
    threads: RULES.training_threads
    resources:
        **RULES.process_resources,
        gpu=RULES.training_gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("train"),
        out=LAYOUT.method_dir(method="darts"),
        checkpoints=LAYOUT.checkpoint("train", name="seed{seed}"),
        genotype=lambda w, input: (
            f"--genotype {input.genotype}" if input.genotype else ""
        ),
    shell:
        "python -m workflow_lib train --settings {params.settings:q} --data {input.data} {params.genotype}"
        " --out {params.out} --checkpoint-dir {params.checkpoints} --seed {wildcards.seed}"
        " --threads {threads} > {log} 2>&1"
