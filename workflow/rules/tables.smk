# Tables 1-3 beside the paper's values, and what every analysis rule file contributes to `rule all`.


rule make_tables:
    input:
        runs="results/tables/runs.csv",
        paper=get_paper_values(),
    output:
        table1=report(
            "results/tables/table1.html",
            caption="../report/table1.rst",
            category="Tables",
            labels={"table": "Table 1"},
        ),
        table2=report(
            "results/tables/table2.html",
            caption="../report/table2.rst",
            category="Tables",
            labels={"table": "Table 2"},
        ),
        table3=report(
            "results/tables/table3.html",
            caption="../report/table3.rst",
            category="Tables",
            labels={"table": "Table 3"},
        ),
        other=expand("results/tables/table{n}.{ext}", n=[1, 2, 3], ext=["csv", "md", "tex"]),
        lineage="results/tables/tables.lineage.json",
    params:
        code=CODE_HASHES["analysis"],
        configured=get_run_metrics(),
        stand_in=get_stand_in(),
    log:
        "logs/tables/make_tables.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    shell:
        "trifecta tables --runs {input.runs} --paper-values {input.paper} --configured {params.configured}"
        " --stand-in {params.stand_in:q} --train-dir results/train --out-dir results/tables > {log} 2>&1"
