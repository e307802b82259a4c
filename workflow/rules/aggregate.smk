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
        "python -m trifecta.cli collect --runs {input} --out {output.runs} --layers-out {output.layers} > {log} 2>&1"


# The step metrics of the runs one figure draws: epoch means (Figures 3, 5) and every k-th step (2, 7).
rule collect_steps:
    input:
        get_figure_metrics,
    output:
        epochs="results/figures/data/{fig}.epochs.csv",
        steps="results/figures/data/{fig}.steps.csv",
    log:
        "logs/aggregate/steps_{fig}.log",
    wildcard_constraints:
        fig="|".join(STEP_FIGURES),
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=CODE_HASHES["aggregate"],
    shell:
        "python -m trifecta.cli collect --runs {input} --epochs-out {output.epochs} --steps-out {output.steps}"
        " > {log} 2>&1"
