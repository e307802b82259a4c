# Only metrics.json (written last) is declared: Snakemake deletes the declared outputs of a failed job, while
# what the run kept under store_dir must survive so that a rerun resumes.
rule train_model:
    input:
        unpack(get_train_inputs),
    output:
        TRAIN_METRICS,
    log:
        f"logs/train/{RUN_ID}.log",
    benchmark:
        f"results/benchmarks/train/{RUN_ID}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: lookup(dpath="resources/threads", within=config)
    resources:
        gpu=lookup(dpath="resources/gpu", within=config),
        slots_per_gpu=lookup(dpath="resources/slots_per_gpu", within=config),
        runtime=get_train_runtime,
        mem_mb=get_train_mem_mb,
    params:
        run_dir=subpath(output[0], parent=True),
        data_dir=subpath(input.data, parent=True),
        store_dir=lookup(dpath="store_dir", within=config),
        settings=get_train_settings,
        code=get_run_code,
        preflight=get_preflight_option,
    shell:
        "python -m trifecta.cli train --dataset {wildcards.dataset} --arch {wildcards.arch} --algo {wildcards.algo}"
        " --seed {wildcards.seed} --out {params.run_dir} --data-dir {params.data_dir} --store {params.store_dir}"
        " --gpus {resources.gpu} --slots-per-gpu {resources.slots_per_gpu} --threads {threads} {params.preflight}"
        " {params.settings}"
        " > {log} 2>&1"


rule train_all:
    input:
        get_run_metrics(),
