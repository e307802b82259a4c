# Local: compute nodes often have no internet. Runs once per dataset, before any training job needs it.
rule download_data:
    output:
        touch(DATA_MARKER),
    log:
        "logs/download/{dataset}.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        data_dir=subpath(output[0], parent=True),
    shell:
        "python -m trifecta.cli download --dataset {wildcards.dataset} --data-dir {params.data_dir} > {log} 2>&1"
