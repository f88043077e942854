# 2. Train: one job per problem x optimizer x seed (SPEC §2.2, §1.3). Resumes from its checkpoint.


rule train:
    input:
        data=problem_data,
    output:
        metrics=f"{RUN_DIR}/metrics.csv",
        run=f"{RUN_DIR}/run.json",
        model=f"{RUN_DIR}/model.pt",
    log:
        TRAIN_LOG,
    params:
        **spec_params("train"),
        py=PY,
        script=os.path.join(SCRIPTS, "train.py"),
        execution=TRAIN_EXECUTION,
    threads: train_threads("train")
    resources:
        **train_resources("train"),
    conda:
        TRAIN_ENV
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --execution {params.execution:q} "
        "--out {params.out:q} --mem-mb {resources.mem_mb} > {log:q} 2>&1"
