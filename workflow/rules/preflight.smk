# One `trifecta selftest` job on a node like the training jobs' (their GPU, threads, memory, partition and GPU
# type) before any of them is submitted: a broken GPU, driver or install fails here, once, with its log printed,
# instead of inside every training job. Training jobs take its report as an input marked ancient and pass it to
# `trifecta train --preflight`: after an edit of the training code, the first of them to start runs the selftest
# of the new code again before it trains. The report has no code hash in its name or params on purpose: a job
# that must run again holds back every job that takes its output from being checked for its own reasons
# (Snakemake 9.27, measured), so a run whose code changed would not be trained again (docs/development.md).


rule preflight:
    output:
        PREFLIGHT,
    log:
        "logs/preflight.log",
    conda:
        "../../envs/torch.yaml"
    threads: lookup(dpath="resources/threads", within=config)
    resources:
        gpu=lookup(dpath="resources/gpu", within=config),
        slots_per_gpu=lookup(dpath="resources/slots_per_gpu", within=config),
        runtime=15,
        mem_mb=lookup(dpath="resources/mem_mb", within=config),
    shell:
        "python -m trifecta.cli selftest --gpus {resources.gpu} --slots-per-gpu {resources.slots_per_gpu}"
        " --threads {threads} --json {output} > {log} 2>&1"
