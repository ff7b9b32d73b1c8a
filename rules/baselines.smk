# Baselines on the same 80% / 20% split: random forest, CNNs (ResNet-18, Tiny ResNet), random search.


rule random_forest:
    input:
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
        settings=RULES.settings("random_forest"),
        out=LAYOUT.method_dir(method="random_forest"),
        checkpoints=LAYOUT.checkpoint("random_forest", name="seed{seed}"),
    shell:
        "python -m workflow_lib baseline --method random_forest --settings {params.settings:q}"
        " --data {input.data} --out {params.out} --checkpoint-dir {params.checkpoints}"
        " --seed {wildcards.seed} --threads {threads} > {log} 2>&1"


rule baseline_cnn:
    input:
        data=LAYOUT.prepared(),
    output:
        metrics=f"{LAYOUT.method_dir()}/metrics.json",
        curves=f"{LAYOUT.method_dir()}/curves.csv",
        predictions=f"{LAYOUT.method_dir()}/predictions.csv",
    log:
        LAYOUT.log("{dataset}", "{method}_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "{method}_seed{seed}")
    priority: 22  # the ResNets are among the longest jobs: start them early, short jobs fill the tail
    conda:
        "envs/workflow.yaml"
    threads: RULES.training_threads
    resources:
        **RULES.process_resources,
        gpu=RULES.training_gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.method_settings,
        out=LAYOUT.method_dir(),
        checkpoints=LAYOUT.checkpoint("{method}", name="seed{seed}"),
    shell:
        "python -m workflow_lib baseline --method {wildcards.method} --settings {params.settings:q}"
        " --data {input.data} --out {params.out} --checkpoint-dir {params.checkpoints}"
        " --seed {wildcards.seed} --threads {threads} > {log} 2>&1"


rule random_search:
    input:
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
    priority: 21
    conda:
        "envs/workflow.yaml"
    threads: RULES.training_threads
    resources:
        **RULES.process_resources,
        gpu=RULES.training_gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("random_search"),
        out=LAYOUT.method_dir(method="random_search"),
        checkpoints=LAYOUT.checkpoint("random_search", name="seed{seed}"),
    shell:
        "python -m workflow_lib baseline --method random_search --settings {params.settings:q}"
        " --data {input.data} --out {params.out} --checkpoint-dir {params.checkpoints}"
        " --seed {wildcards.seed} --threads {threads} > {log} 2>&1"


rule fixed_cell:
    input:
        data=LAYOUT.prepared(),
    output:
        metrics=f"{LAYOUT.method_dir(method='fixed_cell')}/metrics.json",
        curves=f"{LAYOUT.method_dir(method='fixed_cell')}/curves.csv",
        predictions=f"{LAYOUT.method_dir(method='fixed_cell')}/predictions.csv",
    log:
        LAYOUT.log("{dataset}", "fixed_cell_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "fixed_cell_seed{seed}")
    conda:
        "envs/workflow.yaml"
    threads: RULES.training_threads
    resources:
        **RULES.process_resources,
        gpu=RULES.training_gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("fixed_cell"),
        out=LAYOUT.method_dir(method="fixed_cell"),
        checkpoints=LAYOUT.checkpoint("fixed_cell", name="seed{seed}"),
    shell:
        "python -m workflow_lib baseline --method fixed_cell --settings {params.settings:q}"
        " --data {input.data} --out {params.out} --checkpoint-dir {params.checkpoints}"
        " --seed {wildcards.seed} --threads {threads} > {log} 2>&1"
