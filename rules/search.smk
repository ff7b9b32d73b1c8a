# DARTS architecture search (GPU job; checkpoints every epoch, so a retry resumes).


rule search:
    input:
        stage=LAYOUT.stage(stage="search"),
        data=LAYOUT.prepared(),
    output:
        genotype=f"{LAYOUT.search_dir()}/genotype.json",
        history=f"{LAYOUT.search_dir()}/history.json",
        alphas=f"{LAYOUT.search_dir()}/alphas.npz",
        supernet=f"{LAYOUT.search_dir()}/supernet.pt",
        run_info=f"{LAYOUT.search_dir()}/run_info.json",
    params:
        out=LAYOUT.search_dir(),
        checkpoints=LAYOUT.checkpoint("search", name="seed{seed}"),
    log:
        f"{LAYOUT.logs}/{{dataset}}/search_seed{{seed}}.log",
    benchmark:
        f"{LAYOUT.benchmarks}/{{dataset}}/search_seed{{seed}}.tsv"
    threads: threads_of
    resources:
        gpu=gpu_resources,
        mem_mb=lambda w: resources_of(w.dataset, "mem_mb"),
        runtime=lambda w: resources_of(w.dataset, "runtime"),
    retries: 2
    shell:
        "python -m workflow_lib search --stage {input.stage} --data {input.data} --out {params.out}"
        " --checkpoint-dir {params.checkpoints} --seed {wildcards.seed} --threads {threads} > {log} 2>&1"
