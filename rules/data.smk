# Data: per-stage config slices, raw data (download / surrogate), preparation and fixed splits.


rule stage_config:
    output:
        LAYOUT.stage(),
    log:
        LAYOUT.log("{dataset}", "stage_config_{stage}"),
    localrule: True
    params:
        document=lambda w: stage_document(CONFIG, w.dataset, w.stage),
    run:
        from workflow_lib.io import write_json_atomic

        write_json_atomic(output[0], params.document)


rule raw_data:
    input:
        stage=LAYOUT.stage(stage="data"),
    output:
        LAYOUT.manifest(),
    log:
        LAYOUT.log("{dataset}", "raw_data"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "raw_data")
    localrule: True
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        mem_mb=RULES.mem_mb,
    shell:
        "python -m workflow_lib fetch --stage {input.stage} --out {output} --threads {threads} > {log} 2>&1"


rule prepare:
    input:
        stage=LAYOUT.stage(stage="data"),
        manifest=LAYOUT.manifest(),
    output:
        LAYOUT.prepared(),
    log:
        LAYOUT.log("{dataset}", "prepare"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "prepare")
    conda:
        "envs/workflow.yaml"
    resources:
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    shell:
        "python -m workflow_lib prepare --stage {input.stage} --manifest {input.manifest}"
        " --out {output} > {log} 2>&1"
