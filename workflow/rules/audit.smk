# Lineage of every table cell, probe result and figure, and its end-to-end audit (`trifecta audit`), which checks
# every run against the grid the config names (its settings), this checkout's training code and the data files.


onstart:
    remove_stale_audit_report()


rule write_lineage:
    input:
        get_lineage_fragments(),
    output:
        LINEAGE,
    log:
        "logs/audit/write_lineage.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("lineage"),
        grid=get_grid_json(),
        data_dir=config["data_dir"],
    shell:
        "python -m trifecta.cli lineage --out {output} --grid {params.grid:q} --data-dir {params.data_dir} {input}"
        " > {log} 2>&1"


rule audit_results:
    input:
        LINEAGE,
    output:
        report(AUDIT_REPORT, caption="../report/audit.rst", category="Provenance"),
    log:
        "logs/audit/audit_results.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("audit"),
    shell:
        "python -m trifecta.cli audit {input} --out {output} > {log} 2>&1"


# The results as a Workflow Run RO-Crate (Provenance Run Crate profile), made from the audited lineage and the
# runs' records: every training run, probe, table and figure as an action with its inputs, outputs and code.
rule write_crate:
    input:
        lineage=LINEAGE,
        audit=AUDIT_REPORT,
    output:
        "results/ro-crate-metadata.json",
    log:
        "logs/audit/write_crate.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("crate"),
    shell:
        "python -m trifecta.cli crate {input.lineage} --out {output} > {log} 2>&1"
