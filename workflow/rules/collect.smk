rule collect_runs:
    input:
        get_run_metrics(),
    output:
        runs="results/tables/runs.csv",
        layers="results/tables/layers.csv",
        lineage="results/tables/runs.lineage.json",
    log:
        "logs/collect/runs.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("collect"),
    shell:
        "python -m trifecta.cli collect --runs {input} --out {output.runs} --layers-out {output.layers}"
        " --lineage {output.lineage} > {log} 2>&1"


# The step metrics of the runs a figure draws (its declaration has "steps" data): epoch means and every k-th step.
rule collect_steps:
    input:
        get_figure_metrics,
    output:
        epochs="results/figures/data/{fig}.epochs.csv",
        steps="results/figures/data/{fig}.steps.csv",
    log:
        "logs/collect/steps_{fig}.log",
    wildcard_constraints:
        fig="|".join(f for f in FIGURES if "steps" in FIGURES[f].data),
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("collect"),
    shell:
        "python -m trifecta.cli collect --runs {input} --epochs-out {output.epochs} --steps-out {output.steps}"
        " > {log} 2>&1"
