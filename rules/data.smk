# Data: per-stage config slices, raw data (download / surrogate), preparation and fixed splits.


rule stage_config:
    output:
        LAYOUT.stage(),
    params:
        document=lambda w: stage_document(CONFIG, w.dataset, w.stage),
    log:
        f"{LAYOUT.logs}/{{dataset}}/stage_config_{{stage}}.log",
    localrule: True
    run:
        from workflow_lib.io import write_json_atomic

        write_json_atomic(output[0], params.document)


rule raw_data:
    input:
        stage=LAYOUT.stage(stage="data"),
    output:
        LAYOUT.manifest(),
    log:
        f"{LAYOUT.logs}/{{dataset}}/raw_data.log",
    benchmark:
        f"{LAYOUT.benchmarks}/{{dataset}}/raw_data.tsv"
    localrule: True
    shell:
        "python -m workflow_lib fetch --stage {input.stage} --out {output} > {log} 2>&1"


rule prepare:
    input:
        stage=LAYOUT.stage(stage="data"),
        manifest=LAYOUT.manifest(),
    output:
        LAYOUT.prepared(),
    log:
        f"{LAYOUT.logs}/{{dataset}}/prepare.log",
    benchmark:
        f"{LAYOUT.benchmarks}/{{dataset}}/prepare.tsv"
    resources:
        mem_mb=lambda w: resources_of(w.dataset, "mem_mb"),
        runtime=lambda w: resources_of(w.dataset, "runtime"),
    shell:
        "python -m workflow_lib prepare --stage {input.stage} --manifest {input.manifest}"
        " --out {output} > {log} 2>&1"
