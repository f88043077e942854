# 6. Figures: the article's figures with seed bands, and more (SPEC §2.5); the tuned comparison's (SPEC §2.8).


rule figures_train:
    input:
        plan=PLAN_FILE,
        tables=table_files(TRAIN_FIGURE_TABLES),
    output:
        # Per problem its curves, final metric, gap and time to target; across problems the profile and ranks.
        report(
            TRAIN_FIGURES,
            caption="../../report/train_figures.rst",
            category="Training study",
        ),
        TRAIN_FIGURES_SVG,
    log:
        stage_log("figures_train"),
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
            DESCENT_VIEWS,
            caption="../../report/ackley_views.rst",
            category="Descent",
        ),
        report(
            DESCENT_ALL_RUNS,
            caption="../../report/descent_runs.rst",
            category="Descent",
        ),
        DESCENT_3D,
        [run.figure for run in PLAN.descent_runs],
    log:
        stage_log("figures_descent"),
    params:
        py=PY,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        script=os.path.join(SCRIPTS, "figures.py"),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} descent --plan {input.plan:q} --out {params.out:q} > {log:q} 2>&1"


rule figures_tune:
    input:
        plan=PLAN_FILE,
        tables=table_files(TUNE_FIGURE_TABLES),
    output:
        report(
            TUNE_FIGURES,
            caption="../../report/tune_figures.rst",
            category="Tuned comparison",
        ),
    log:
        stage_log("figures_tune"),
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "figures.py"),
        tables=lambda wildcards, input: os.path.dirname(input.tables[0]),
        out=lambda wildcards, output: os.path.dirname(os.path.dirname(output[0])),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} tune --plan {input.plan:q} --tables {params.tables:q} "
        "--out {params.out:q} > {log:q} 2>&1"
