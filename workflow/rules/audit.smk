# Lineage of every table cell, probe result and figure, and its end-to-end audit (`trifecta audit`), which checks
# every run against the grid the config names (its settings), this checkout's training code and the data files.


rule write_lineage:
    input:
        get_lineage_fragments(),
    output:
        "results/lineage.json",
    params:
        code=CODE_HASHES["analysis"],
        grid=get_grid_json(),
        data_dir=config["data_dir"],
    log:
        "logs/audit/write_lineage.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    shell:
        "trifecta lineage --out {output} --grid {params.grid:q} --data-dir {params.data_dir} {input} > {log} 2>&1"


rule audit_results:
    input:
        "results/lineage.json",
    output:
        report("results/audit.txt", caption="../report/audit.rst", category="Provenance"),
    params:
        code=CODE_HASHES["analysis"],
    log:
        "logs/audit/audit_results.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    shell:
        "trifecta audit {input} --out {output} > {log} 2>&1"
