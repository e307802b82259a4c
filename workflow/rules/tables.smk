# The paper's tables (declared in planning/paper.py) beside its values, one job per table (each waits only for its
# own runs), and the scorecard.


rule make_table:
    input:
        metrics=get_table_metrics,
        paper=get_paper_values(),
    output:
        csv="results/tables/{table}.csv",
        md="results/tables/{table}.md",
        tex="results/tables/{table}.tex",
        html=report(
            "results/tables/{table}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        lineage="results/tables/{table}.lineage.json",
    log:
        "logs/tables/{table}.log",
    wildcard_constraints:
        table="|".join(TABLES),
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("tables"),
        configured=get_table_configured,
        train_dir=TRAIN_DIR,
        stand_in=get_stand_in,
        out_dir=subpath(output.csv, parent=True),
    shell:
        "python -m trifecta.cli tables --table {wildcards.table} --metrics {input.metrics} --paper-values {input.paper}"
        " --configured {params.configured} --stand-in {params.stand_in:q} --train-dir {params.train_dir}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule make_scorecard:
    input:
        expand("results/tables/{table}.csv", table=TABLES),
    output:
        csv="results/tables/scorecard.csv",
        md=report("results/tables/scorecard.md", caption="../report/scorecard.rst", category="Tables"),
    log:
        "logs/tables/scorecard.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("scorecard"),
    shell:
        "python -m trifecta.cli scorecard --tables {input} --out-csv {output.csv} --out-md {output.md} > {log} 2>&1"


# `snakemake table1` trains only Table 1's runs and makes only Table 1 (likewise for every declared table).
for table in TABLES:

    rule:
        name:
            table
        input:
            expand("results/tables/{table}.{ext}", table=table, ext=TABLE_FILES),
