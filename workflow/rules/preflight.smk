# One `trifecta selftest` job on a node like the training jobs' (their GPU, threads, memory, partition and GPU
# type) before any of them is submitted: a broken GPU, driver or install fails here, once, with its log printed,
# instead of inside every training job. Its report is named by the training code's hash, so it runs again when
# that code changes (and with it every training job); training jobs take it as an input marked ancient, so that
# touching it reruns nothing. Rebuilt after it was deleted, it reruns every training job all the same (Snakemake
# reruns what takes a rebuilt input): keep the report (docs/development.md, "What reruns when").


rule preflight:
    output:
        PREFLIGHT,
    log:
        "logs/preflight.log",
    threads: lookup(dpath="resources/threads", within=config)
    resources:
        gpu=lookup(dpath="resources/gpu", within=config),
        slots_per_gpu=lookup(dpath="resources/slots_per_gpu", within=config),
        runtime=15,
        mem_mb=lookup(dpath="resources/mem_mb", within=config),
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m trifecta.cli selftest --gpus {resources.gpu} --slots-per-gpu {resources.slots_per_gpu}"
        " --threads {threads} --json {output} > {log} 2>&1"
