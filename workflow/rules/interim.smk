# `snakemake interim`: Tables 1-3 and the figures whose runs have all finished, from the runs finished so far,
# in results/interim/. It never starts or waits for a training job: it reads the metrics.json files present
# while planning (no rule input), and reruns when that set (or a file in it) changes.


rule interim:
    input:
        paper=get_paper_values(),
    output:
        expand("results/interim/{table}.{ext}", table=TABLES, ext=TABLE_FILES),
        figures=directory("results/interim/figures"),
    params:
        finished=get_finished_state(),
        metrics=get_finished_runs(),
        configured=" ".join(run.id for run in GRID.runs),
        stand_in=get_stand_in(),
        figures=get_interim_figures(),
        code=CODE_HASHES["interim"],
    log:
        "logs/interim.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    shell:
        "python -m trifecta.cli interim --metrics {params.metrics} --configured {params.configured}"
        " --paper-values {input.paper} --stand-in {params.stand_in:q} --figures {params.figures:q}"
        " --out-dir results/interim > {log} 2>&1"
