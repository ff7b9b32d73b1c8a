# Search advantage (Yang et al., ICLR 2020): the found cell (the one the final training gets) and random cells
# of the same space, trained with one protocol and scored on the test split, per seed (GPU job; every cell
# checkpoints per epoch and finished cells are recorded, so a retry resumes).


rule search_advantage:
    input:
        data=LAYOUT.prepared(),
        genotype=RULES.train_genotype,
    output:
        advantage=f"{LAYOUT.advantage_dir()}/advantage.json",
        run_info=f"{LAYOUT.advantage_dir()}/run_info.json",
    log:
        LAYOUT.log("{dataset}", "search_advantage_seed{seed}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "search_advantage_seed{seed}")
    priority: 24  # longest jobs first (the default's critical path: search -> advantage)
    conda:
        "envs/workflow.yaml"
    threads: RULES.training_threads
    resources:
        **RULES.process_resources,
        gpu=RULES.training_gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("search_advantage"),
        out=LAYOUT.advantage_dir(),
        checkpoints=LAYOUT.checkpoint("search_advantage", name="seed{seed}"),
    shell:
        "python -m workflow_lib search-advantage --settings {params.settings:q} --data {input.data}"
        " --genotype {input.genotype} --out {params.out} --checkpoint-dir {params.checkpoints}"
        " --seed {wildcards.seed} --threads {threads} > {log} 2>&1"
