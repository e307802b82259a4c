# `snakemake interim`: the tables and the figures whose runs have all finished, from the runs finished so far, in
# results/interim/. It never starts or waits for a training job: `trifecta interim` finds the finished runs itself
# (metrics.json present) when it runs. A rule without outputs: it runs every time it is asked for.


rule interim:
    input:
        paper=get_paper_values(),
    log:
        "logs/interim.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    params:
        configured=get_configured_runs(),
        train_dir=TRAIN_DIR,
        stand_in=get_stand_in(),
        figures=get_figure_entries(),
    shell:
        "python -m trifecta.cli interim --configured {params.configured} --train-dir {params.train_dir}"
        " --paper-values {input.paper} --stand-in {params.stand_in:q} --figures {params.figures:q}"
        " --out-dir results/interim > {log} 2>&1"
