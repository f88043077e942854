# 5. Figures: the article's figures with seed bands, and more (SPEC §2.5).

TRAIN_FIGURES = ["curves", "final_accuracy", "generalisation_gap", "time_to_target"]


rule figures_train:
    input:
        plan=PLAN_FILE,
        tables=expand(f"{TABLES}/{{table}}.parquet", table=TRAIN_TABLES),
    output:
        report(
            expand(f"{FIGURES}/train/{{figure}}.png", figure=TRAIN_FIGURES),
            caption="../../report/train_figures.rst",
            category="Training study",
        ),
        expand(f"{FIGURES}/train/{{figure}}.svg", figure=TRAIN_FIGURES),
    log:
        f"{R}/logs/figures_train.log",
    params:
        py=PY,
        tables=lambda wildcards, input: os.path.dirname(input.tables[0]),
        out=lambda wildcards, output: os.path.dirname(output[0]),
        script=os.path.join(SCRIPTS, "figures.py"),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} train --plan {input.plan:q} --tables {params.tables:q} "
        "--out {params.out:q} > {log:q} 2>&1"


rule figures_descent:
    input:
        plan=PLAN_FILE,
        trajectories=PLAN.descent_files("trajectory.csv"),
    output:
        report(
            f"{FIGURES}/descent/ackley_views.png",
            caption="../../report/ackley_views.rst",
            category="Descent",
        ),
        report(
            expand(f"{FIGURES}/descent/{{function}}_all_runs.png", function=PLAN.descent_functions()),
            caption="../../report/descent_runs.rst",
            category="Descent",
        ),
        expand(f"{FIGURES}/descent/{{function}}_3d.html", function=PLAN.descent_functions()),
        [run.figure for run in PLAN.descent_runs],
    log:
        f"{R}/logs/figures_descent.log",
    params:
        py=PY,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        script=os.path.join(SCRIPTS, "figures.py"),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} descent --plan {input.plan:q} --out {params.out:q} > {log:q} 2>&1"
