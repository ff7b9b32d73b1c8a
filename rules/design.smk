# Kirigami design (Hanakata et al. 2018): the candidate table of all 29,791 patterns, the ML-guided search
# for the most stretchable design, and learning curves (test score against training-set size).


rule design_table:
    input:
        data=LAYOUT.prepared(),
    output:
        LAYOUT.design_table(),
    log:
        LAYOUT.log("{dataset}", "design_table"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "design_table")
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("design_table"),
    shell:
        "python -m workflow_lib design-table --settings {params.settings:q} --data {input.data}"
        " --out {output} --threads {threads} > {log} 2>&1"


rule design:
    input:
        data=LAYOUT.prepared(),
        table=LAYOUT.design_table(),
        genotype=RULES.design_genotype,
    output:
        json=f"{LAYOUT.design_dir()}/design.json",
        csv=f"{LAYOUT.design_dir()}/design.csv",
    log:
        LAYOUT.log("{dataset}", "design"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "design")
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        gpu=RULES.gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("design"),
        seeds=RULES.seeds,
        genotype=lambda w, input: (
            f"--genotype {input.genotype}" if input.genotype else ""
        ),
    shell:
        "python -m workflow_lib design --settings {params.settings:q} --data {input.data}"
        " --table {input.table} {params.genotype} --out {output.json} --seeds {params.seeds}"
        " --threads {threads} > {log} 2>&1"


rule learning_curves:
    input:
        data=LAYOUT.prepared(),
        genotype=RULES.curves_genotype,
    output:
        json=f"{LAYOUT.curves_dir()}/learning_curves.json",
        csv=f"{LAYOUT.curves_dir()}/learning_curves.csv",
    log:
        LAYOUT.log("{dataset}", "learning_curves"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "learning_curves")
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        gpu=RULES.gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("learning_curves"),
        seeds=RULES.seeds,
        checkpoints=LAYOUT.checkpoint("learning_curves", name="all"),
        genotype=lambda w, input: (
            f"--genotype {input.genotype}" if input.genotype else ""
        ),
    shell:
        "python -m workflow_lib learning-curves --settings {params.settings:q} --data {input.data}"
        " {params.genotype} --out {output.json} --checkpoint-dir {params.checkpoints}"
        " --seeds {params.seeds} --threads {threads} > {log} 2>&1"
