rule aggregate_runs:
    input:
        get_run_metrics(),
    output:
        runs="results/tables/runs.csv",
        layers="results/tables/layers.csv",
    log:
        "logs/aggregate/runs.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=CODE_HASHES["aggregate"],
    shell:
        "trifecta collect --runs {input} --out {output.runs} --layers-out {output.layers} > {log} 2>&1"
