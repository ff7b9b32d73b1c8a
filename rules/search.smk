# DARTS architecture search (GPU job; checkpoints every epoch, so a retry resumes).
# The critical path (data -> search -> final training) gets priorities, so on a few cores it starts first.


rule search:
    input:
        data=LAYOUT.prepared(),
    output:
        genotype=f"{LAYOUT.search_dir()}/genotype.json",
        history=f"{LAYOUT.search_dir()}/history.json",
        alphas=f"{LAYOUT.search_dir()}/alphas.npz",
        supernet=f"{LAYOUT.search_dir()}/supernet.pt",
        run_info=f"{LAYOUT.search_dir()}/run_info.json",
    log:
        LAYOUT.log("{dataset}", "search_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "search_seed{seed}")
    priority: 30
    conda:
        "envs/workflow.yaml"
    threads: RULES.training_threads
    resources:
        **RULES.process_resources,
        gpu=RULES.training_gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("search"),
        out=LAYOUT.search_dir(),
        checkpoints=LAYOUT.checkpoint("search", name="seed{seed}"),
    shell:
        "python -m workflow_lib search --settings {params.settings:q} --data {input.data} --out {params.out}"
        " --checkpoint-dir {params.checkpoints} --seed {wildcards.seed} --threads {threads} > {log} 2>&1"


rule select_cell:
    input:
        data=LAYOUT.prepared(),
        genotypes=RULES.search_genotypes,
    output:
        genotype=f"{LAYOUT.selection_dir()}/selected_genotype.json",
        scores=f"{LAYOUT.selection_dir()}/selection.json",
    log:
        LAYOUT.log("{dataset}", "select_cell"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "select_cell")
    priority: 25
    conda:
        "envs/workflow.yaml"
    threads: RULES.training_threads
    resources:
        **RULES.process_resources,
        gpu=RULES.training_gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("select_cell"),
        seeds=RULES.seeds,
        checkpoints=LAYOUT.checkpoint("select_cell", name="all"),
    shell:
        "python -m workflow_lib select --settings {params.settings:q} --data {input.data}"
        " --genotypes {input.genotypes} --seeds {params.seeds} --out {output.genotype}"
        " --checkpoint-dir {params.checkpoints} --threads {threads} > {log} 2>&1"
