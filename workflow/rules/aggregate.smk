# 5. Aggregate: pandas tables across runs (SPEC §2.4), of the study's runs, the descent runs and the tuning stage.


rule aggregate_train:
    input:
        plan=PLAN_FILE,
        metrics=PLAN.train_files("metrics.csv"),
        runs=PLAN.train_files("run.json"),
        published=PLAN.published_files("metrics.csv"),
    output:
        expand(f"{TABLES}/{{table}}.{{ext}}", table=TRAIN_TABLES, ext=files.TABLE_FORMATS),
    log:
        stage_log("aggregate_train"),
    params:
        py=PY,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        script=os.path.join(SCRIPTS, "aggregate.py"),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} train --plan {input.plan:q} --out {params.out:q} > {log:q} 2>&1"


rule aggregate_descent:
    input:
        plan=PLAN_FILE,
        summaries=PLAN.descent_files("summary.csv"),
    output:
        expand(f"{TABLES}/{{table}}.{{ext}}", table=DESCENT_TABLES, ext=files.TABLE_FORMATS),
    log:
        stage_log("aggregate_descent"),
    params:
        py=PY,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        script=os.path.join(SCRIPTS, "aggregate.py"),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} descent --plan {input.plan:q} --out {params.out:q} > {log:q} 2>&1"


rule aggregate_tune:
    input:
        plan=PLAN_FILE,
        trials=PLAN.trial_files("metrics.csv"),
        selections=PLAN.selection_files(),
        metrics=PLAN.tuned_files("metrics.csv"),
        runs=PLAN.tuned_files("run.json"),
        # the default-hyperparameter ranking, beside the tuned one
        default=table_files(["optimizer_summary"]),
    output:
        expand(f"{TABLES}/{{table}}.{{ext}}", table=TUNE_TABLES, ext=files.TABLE_FORMATS),
    log:
        stage_log("aggregate_tune"),
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "aggregate.py"),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} tune --plan {input.plan:q} --out {params.out:q} > {log:q} 2>&1"
