# 4. Tune (SPEC §2.8): a validation split held out of the training set; trials of each optimizer's search
#    space, judged on validation only; the selected setting rerun over the seeds, evaluated on the test set.
#    (Its tables and figures: aggregate_tune, figures_tune.)


rule validation_split:
    input:
        data=runs.DATA_FILE,
    output:
        SPLIT_FILE,
    log:
        SPLIT_LOG,
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
        trial_data,
    output:
        metrics=f"{TRIAL_DIR}/metrics.csv",
        run=f"{TRIAL_DIR}/run.json",
    log:
        TRIAL_LOG,
    params:
        **spec_params("trial"),
        py=PY,
        script=os.path.join(SCRIPTS, "train.py"),
        execution=TRAIN_EXECUTION,
    threads: train_threads("trial")
    resources:
        **train_resources("trial"),
    conda:
        TRAIN_ENV
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --execution {params.execution:q} "
        "--out {params.out:q} --mem-mb {resources.mem_mb} --no-model > {log:q} 2>&1"


rule select:
    input:
        trials=lambda wildcards: PLAN.trial_files("metrics.csv", wildcards.problem, wildcards.optimizer),
    output:
        SELECTION,
    log:
        SELECTION_LOG,
    params:
        py=PY,
        # What this selection reads (its trials, criterion, space, the problem's metrics), not the whole plan:
        # a new problem or optimizer re-selects nothing else.
        plan=lambda wildcards: PLAN.selection_plan(wildcards.problem, wildcards.optimizer).to_json(),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} -m optimbench.tune select --plan {params.plan:q} --problem {wildcards.problem:q} "
        "--optimizer {wildcards.optimizer:q} --out {output:q} > {log:q} 2>&1"


rule tuned_train:
    input:
        unpack(tuned_data),
    output:
        metrics=f"{TUNED_DIR}/metrics.csv",
        run=f"{TUNED_DIR}/run.json",
        model=f"{TUNED_DIR}/model.pt",
    log:
        TUNED_LOG,
    params:
        **spec_params("tuned_train"),
        py=PY,
        script=os.path.join(SCRIPTS, "train.py"),
        execution=TRAIN_EXECUTION,
    threads: train_threads("tuned_train")
    resources:
        **train_resources("tuned_train"),
    conda:
        TRAIN_ENV
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --selection {input.selection:q} "
        "--execution {params.execution:q} --out {params.out:q} --mem-mb {resources.mem_mb} > {log:q} 2>&1"
