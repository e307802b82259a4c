# Figures 1-10 of the paper; a figure whose runs are not all in the grid is skipped, not failed.


rule plot_figure:
    input:
        unpack(get_figure_inputs),
    output:
        png=report(
            "results/figures/{fig}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{fig}"},
        ),
        pdf="results/figures/{fig}.pdf",
        lineage="results/figures/{fig}.lineage.json",
    params:
        code=CODE_HASHES["figures"],
        args=get_figure_args,
        data=get_figure_data_args,
    log:
        "logs/figures/{fig}.log",
    wildcard_constraints:
        fig="|".join(FIGURES),
    localrule: True
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m trifecta.cli figure --name {wildcards.fig} --runs {input.runs} --layers {input.layers} {params.args}"
        " {params.data} --png {output.png} --pdf {output.pdf} --lineage {output.lineage} > {log} 2>&1"


# Figure 10's weight matrices, exported from the best seed's snapshot so that figures never read checkpoints.
rule export_weights:
    input:
        runs="results/tables/runs.csv",
    output:
        "results/weights/{fig}/{algo}.npz",
    params:
        code=CODE_HASHES["weights"],
        args=get_weight_args,
    log:
        "logs/weights/{fig}/{algo}.log",
    wildcard_constraints:
        fig="fig10",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m trifecta.cli export-weights --runs {input.runs} --algo {wildcards.algo} {params.args} --out {output}"
        " > {log} 2>&1"
