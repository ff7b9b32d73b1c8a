# The design loop (Hanakata et al. 2018): kirigami's candidate table of all 29,791 patterns (lookup oracle),
# the ML-guided search of a design space (kirigami or an npz file's rows), with a lookup oracle in one job or
# the user's simulator as jobs (command oracle), and learning curves (test score against training-set size).

from workflow_lib.workflow.targets import simulation_retries

SIMULATION_RETRIES = simulation_retries(CONFIG)


rule design_table:
    input:
        data=LAYOUT.prepared(),
    output:
        LAYOUT.design_table(),
    log:
        LAYOUT.log("{dataset}", "design_table"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "design_table")
    priority: 35  # seconds long, and the design job waits for it
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
        unpack(RULES.design_inputs),
    output:
        json=f"{LAYOUT.design_dir()}/design.json",
        csv=f"{LAYOUT.design_dir()}/design.csv",
        table=f"{LAYOUT.design_dir()}/simulations.csv",
    log:
        LAYOUT.log("{dataset}", "design"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "design")
    priority: 21  # half a minute: not left for the end of the run
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
        journal=LAYOUT.design_journal(),
        extra=lambda w, input: (
            f"--table {input.table}"
            if input.table
            else (
                f"--state {input.state} --batches {' '.join(input.batches)}"
                if input.state
                else ""
            )
        ),
    shell:
        "python -m workflow_lib design --settings {params.settings:q} --candidates {input.candidates}"
        " {params.extra} --journal {params.journal} --out {output.json} --seeds {params.seeds}"
        " --threads {threads} > {log} 2>&1"


# The command oracle (design.oracle.type: command): generation g's pick job settles generation g-1's
# simulations and picks for every picker and seed at once; its designs to simulate go into a fixed number
# of slots (design.oracle.batch designs each, the last ones possibly empty), one simulation job per slot.


rule design_pick:
    input:
        unpack(RULES.design_pick_inputs),
    output:
        state=f"{LAYOUT.design_generation()}/state.json",
        slots=directory(f"{LAYOUT.design_generation()}/slots"),
    log:
        LAYOUT.log("{dataset}", "design_pick_gen{generation}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "design_pick_gen{generation}")
    wildcard_constraints:
        generation=r"\d+",
    conda:
        "envs/workflow.yaml"
    threads: RULES.threads
    resources:
        gpu=RULES.gpu,
        mem_mb=RULES.mem_mb,
        runtime=RULES.runtime,
    params:
        settings=RULES.settings("design_pick"),
        seeds=RULES.seeds,
        journal=LAYOUT.design_journal(),
        previous=lambda w, input: (
            f"--state {input.state} --batches {' '.join(input.batches)}"
            if input.state
            else ""
        ),
        slots=lambda w, output: " ".join(
            f"{output.slots}/b{b}.npz" for b in range(RULES.design_slot_count(w))
        ),
    shell:
        "python -m workflow_lib design-pick --settings {params.settings:q} --candidates {input.candidates}"
        " --generation {wildcards.generation} {params.previous} --slots {params.slots}"
        " --journal {params.journal} --out {output.state} --seeds {params.seeds}"
        " --threads {threads} > {log} 2>&1"


rule design_simulate:
    input:
        slots=f"{LAYOUT.design_generation()}/slots",
    output:
        f"{LAYOUT.design_generation()}/batch{{batch}}.csv",
    log:
        LAYOUT.log("{dataset}", "design_simulate_gen{generation}_b{batch}"),
    benchmark:
        LAYOUT.benchmark("{dataset}", "design_simulate_gen{generation}_b{batch}")
    wildcard_constraints:
        generation=r"\d+",
        batch=r"\d+",
    retries: SIMULATION_RETRIES
    conda:
        "envs/workflow.yaml"
    threads: lambda w: RULES.oracle_resource(w, "threads")
    resources:
        mem_mb=lambda w: RULES.oracle_resource(w, "mem_mb"),
        runtime=lambda w, attempt: RULES.oracle_resource(w, "runtime") * attempt,
        attempt=lambda w, attempt: attempt,
    params:
        settings=RULES.settings("design_simulate"),
        journal=LAYOUT.design_journal(),
    shell:
        "python -m workflow_lib design-simulate --settings {params.settings:q}"
        " --slot {input.slots}/b{wildcards.batch}.npz --journal {params.journal} --out {output}"
        " --generation {wildcards.generation} --batch {wildcards.batch}"
        " --attempt {resources.attempt} > {log} 2>&1"


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
