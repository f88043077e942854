# 5. Figures: the article's figures with seed bands, and more (SPEC §2.5).

PROBLEMS = list(PLAN.settings["problems"])


rule figures_train:
    input:
        plan=PLAN_FILE,
        tables=expand(f"{TABLES}/{{table}}.parquet", table=TRAIN_TABLES),
    output:
        # Per problem its curves, final metric, gap and time to target; across problems the profile and ranks.
        report(
            [str(f) for f in figure_files.train_figure_files(PROBLEMS, f"{FIGURES}/train", ("png",))],
            caption="../../report/train_figures.rst",
            category="Training study",
        ),
        [str(f) for f in figure_files.train_figure_files(PROBLEMS, f"{FIGURES}/train", ("svg",))],
    log:
        f"{R}/logs/figures_train.log",
    params:
        py=PY,
        tables=lambda wildcards, input: os.path.dirname(input.tables[0]),
        # the train figures folder: per-problem figures lie one level below it
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),
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
