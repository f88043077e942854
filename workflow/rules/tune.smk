# 7. Tune (SPEC §2.8): a validation split held out of the training set; trials of each optimizer's search
#    space, judged on validation only; the selected setting rerun over the seeds, evaluated on the test set.

TUNE_TABLES = ["tune_trials", "tune_selection", "budget_curves", "tuned_runs", "tuned_seed_summary",
               "tuned_optimizer_summary", "tuned_claims", "rankings"]


rule validation_split:
    input:
        data=study.DATA_FILE,
    output:
        study.SPLIT_FILE.replace("{seed}", "{split_seed}"),
    log:
        "resources/logs/validation_split_{stem}-{size}-seed{split_seed}.log",
    wildcard_constraints:
        size=r"\d+",
        split_seed=r"\d+",
    params:
        py=PY,
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} -m optimbench.tune split --data {input.data:q} --size {wildcards.size} "
        "--seed {wildcards.split_seed} --out {output:q} > {log:q} 2>&1"


rule trial:
    input:
        data=problem_data,
        split=problem_split,
    output:
        metrics=f"{TRIAL_DIR}/metrics.csv",
        run=f"{TRIAL_DIR}/run.json",
    log:
        study.pattern("{results}/logs/tune/{problem}/{optimizer}/trial{trial}.log", R),
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "train.py"),
        spec=trial_spec,
        execution=train_execution,
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    threads: TRAIN["threads"]
    resources:
        mem_mb=TRAIN["mem_mb"],
        runtime=lambda wildcards, attempt: int(TRAIN["epochs"] * TRAIN["minutes_per_epoch"] * attempt) + 5,
        gpu_percent=TRAIN["gpus"] * (100 // TRAIN["runs_per_gpu"]),
        **train_gres(),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --execution {params.execution:q} "
        "--out {params.out:q} --threads {threads} --no-model > {log:q} 2>&1"


rule select:
    input:
        trials=lambda wildcards: PLAN.trial_files("metrics.csv", wildcards.problem, wildcards.optimizer),
    output:
        study.pattern(study.SELECTION, R),
    log:
        study.pattern("{results}/logs/tune/{problem}/{optimizer}/select.log", R),
    params:
        py=PY,
        # What this selection reads (its trials, criterion, space, the problem's metrics), not the whole plan:
        # a new problem or optimizer re-selects nothing else.
        plan=lambda wildcards: json.dumps(PLAN.selection_plan(wildcards.problem, wildcards.optimizer), sort_keys=True),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} -m optimbench.tune select --plan {params.plan:q} --problem {wildcards.problem:q} "
        "--optimizer {wildcards.optimizer:q} --out {output:q} > {log:q} 2>&1"


rule tuned_train:
    input:
        data=problem_data,
        split=problem_split,
        selection=study.pattern(study.SELECTION, R),
    output:
        metrics=f"{TUNED_DIR}/metrics.csv",
        run=f"{TUNED_DIR}/run.json",
        model=f"{TUNED_DIR}/model.pt",
    log:
        study.pattern("{results}/logs/tuned/{problem}/{optimizer}/seed{seed}.log", R),
    benchmark:
        study.pattern(study.TUNED_BENCHMARK, R)
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "train.py"),
        spec=tuned_spec,
        execution=train_execution,
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    threads: TRAIN["threads"]
    resources:
        mem_mb=TRAIN["mem_mb"],
        runtime=lambda wildcards, attempt: int(TRAIN["epochs"] * TRAIN["minutes_per_epoch"] * attempt) + 5,
        gpu_percent=TRAIN["gpus"] * (100 // TRAIN["runs_per_gpu"]),
        **train_gres(),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --selection {input.selection:q} "
        "--execution {params.execution:q} --out {params.out:q} --threads {threads} > {log:q} 2>&1"


rule aggregate_tune:
    input:
        plan=PLAN_FILE,
        trials=PLAN.trial_files("metrics.csv"),
        selections=PLAN.selection_files(),
        finals=PLAN.tuned_files("metrics.csv"),
        default=f"{TABLES}/seed_summary.parquet",
    output:
        expand(f"{TABLES}/{{table}}.{{ext}}", table=TUNE_TABLES, ext=["csv", "parquet"]),
    log:
        f"{R}/logs/aggregate_tune.log",
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "aggregate.py"),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} tune --plan {input.plan:q} --out {params.out:q} > {log:q} 2>&1"


rule figures_tune:
    input:
        plan=PLAN_FILE,
        tables=expand(f"{TABLES}/{{table}}.parquet", table=TUNE_TABLES),
    output:
        report(
            [str(f) for f in figure_files.tune_figure_files(PROBLEMS, f"{FIGURES}/tune")],
            caption="../../report/tune_figures.rst",
            category="Tuned comparison",
        ),
    log:
        f"{R}/logs/figures_tune.log",
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
