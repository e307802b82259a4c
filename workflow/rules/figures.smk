# The paper's figures (declared in planning/paper.py); one whose runs are not all in the grid is skipped, not failed.


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
    log:
        "logs/figures/{fig}.log",
    wildcard_constraints:
        fig="|".join(FIGURES),
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("figure"),
        args=get_figure_args,
    shell:
        "python -m trifecta.cli figure --name {wildcards.fig} --runs {input.runs} --layers {input.layers} {params.args}"
        " --png {output.png} --pdf {output.pdf} --lineage {output.lineage} > {log} 2>&1"


# Weight matrices (figures with "weights" data: Figure 10), exported from the best seed's snapshot so that
# figures never read checkpoints.
rule export_weights:
    input:
        runs="results/tables/runs.csv",
    output:
        "results/weights/{fig}/{algo}.npz",
    log:
        "logs/weights/{fig}/{algo}.log",
    wildcard_constraints:
        fig="|".join(f for f in FIGURES if "weights" in FIGURES[f].data),
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        code=get_code("export-weights"),
        args=get_weight_args,
    shell:
        "python -m trifecta.cli export-weights --runs {input.runs} --algo {wildcards.algo} {params.args} --out {output}"
        " > {log} 2>&1"
