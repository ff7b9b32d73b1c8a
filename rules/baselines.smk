# Baselines on the same 80% / 20% split: random forest, CNNs (ResNet-18, Tiny ResNet), random search.


rule random_forest:
    input:
        stage=LAYOUT.stage(stage="random_forest"),
        data=LAYOUT.prepared(),
    output:
        metrics=f"{LAYOUT.method_dir(method='random_forest')}/metrics.json",
        curves=f"{LAYOUT.method_dir(method='random_forest')}/curves.csv",
        predictions=f"{LAYOUT.method_dir(method='random_forest')}/predictions.csv",
    log:
        LAYOUT.log("{dataset}", "random_forest_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "random_forest_seed{seed}")
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        out=LAYOUT.method_dir(method="random_forest"),
        checkpoints=LAYOUT.checkpoint("random_forest", name="seed{seed}"),
    shell:
        "python -m workflow_lib baseline --method random_forest --stage {input.stage} --data {input.data}"
        " --out {params.out} --checkpoint-dir {params.checkpoints} --seed {wildcards.seed}"
        " --threads {threads} > {log} 2>&1"


rule baseline_cnn:
    input:
        stage=LAYOUT.stage(stage="{method}"),
        data=LAYOUT.prepared(),
    output:
        metrics=f"{LAYOUT.method_dir()}/metrics.json",
        curves=f"{LAYOUT.method_dir()}/curves.csv",
        predictions=f"{LAYOUT.method_dir()}/predictions.csv",
    log:
        LAYOUT.log("{dataset}", "{method}_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "{method}_seed{seed}")
    retries: 2
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        gpu=RULES.gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        out=LAYOUT.method_dir(),
        checkpoints=LAYOUT.checkpoint("{method}", name="seed{seed}"),
    shell:
        "python -m workflow_lib baseline --method {wildcards.method} --stage {input.stage} --data {input.data}"
        " --out {params.out} --checkpoint-dir {params.checkpoints} --seed {wildcards.seed}"
        " --threads {threads} > {log} 2>&1"


rule random_search:
    input:
        stage=LAYOUT.stage(stage="random_search"),
        data=LAYOUT.prepared(),
    output:
        metrics=f"{LAYOUT.method_dir(method='random_search')}/metrics.json",
        curves=f"{LAYOUT.method_dir(method='random_search')}/curves.csv",
        predictions=f"{LAYOUT.method_dir(method='random_search')}/predictions.csv",
        candidates=f"{LAYOUT.method_dir(method='random_search')}/candidates.json",
    log:
        LAYOUT.log("{dataset}", "random_search_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "random_search_seed{seed}")
    retries: 2
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        gpu=RULES.gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        out=LAYOUT.method_dir(method="random_search"),
        checkpoints=LAYOUT.checkpoint("random_search", name="seed{seed}"),
    shell:
        "python -m workflow_lib baseline --method random_search --stage {input.stage} --data {input.data}"
        " --out {params.out} --checkpoint-dir {params.checkpoints} --seed {wildcards.seed}"
        " --threads {threads} > {log} 2>&1"
