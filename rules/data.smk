# Data: raw data (download / surrogate / the user's file) and preparation with the fixed split.


rule raw_data:
    input:
        RULES.source_files,
    output:
        LAYOUT.manifest(),
    log:
        LAYOUT.log("{dataset}", "raw_data"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "raw_data")
    priority: 40
    localrule: True
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        mem_mb=RULES.mem_mb,
    params:
        settings=RULES.settings("raw_data"),
    shell:
        "python -m workflow_lib fetch --settings {params.settings:q} --out {output} --threads {threads}"
        " > {log} 2>&1"


rule prepare:
    input:
        manifest=LAYOUT.manifest(),
    output:
        data=LAYOUT.prepared(),
        summary=LAYOUT.prepared_summary(),
    log:
        LAYOUT.log("{dataset}", "prepare"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "prepare")
    priority: 40
    conda:
        "envs/workflow.yaml"
    resources:
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("prepare"),
    shell:
        "python -m workflow_lib prepare --settings {params.settings:q} --manifest {input.manifest}"
        " --out {output.data} > {log} 2>&1"
