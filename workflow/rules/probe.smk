# Probing classifiers (appendix F, Figure 8): one job per run, all its layers.


rule probe_layers:
    input:
        TRAIN_METRICS,
    output:
        PROBE_TABLE,
    log:
        f"logs/probe/{RUN_ID}.log",
    benchmark:
        f"results/benchmarks/probe/{RUN_ID}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: config["probe"]["threads"]
    resources:
        gpu=config["probe"]["gpu"],
        slots_per_gpu=config["resources"]["slots_per_gpu"],
        runtime=config["probe"]["runtime"],
        mem_mb=config["probe"]["mem_mb"],
    params:
        run_dir=subpath(input[0], parent=True),
        code=get_code("probe"),
        hp=get_probe_settings(),
        data_dir=config["data_dir"],
    shell:
        "python -m trifecta.cli probe --run-dir {params.run_dir} {params.hp} --data-dir {params.data_dir}"
        " --gpus {resources.gpu} --slots-per-gpu {resources.slots_per_gpu} --threads {threads} --out {output}"
        " > {log} 2>&1"


rule merge_probes:
    input:
        get_probe_tables(),
    output:
        table=report(
            "results/tables/probe.csv",
            caption="../report/probe.rst",
            category="Probing",
        ),
        lineage="results/tables/probe.lineage.json",
    log:
        "logs/probe/merge_probes.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("probe"),
    shell:
        "python -m trifecta.cli probe --merge {input} --out {output.table} --lineage {output.lineage} > {log} 2>&1"
