# 2. Train: ResNet18, one job per optimizer x seed (SPEC §2.2). Resumes from its checkpoint.


rule train:
    input:
        data=DATA_NPZ,
    output:
        metrics=f"{RUN_DIR}/metrics.csv",
        run=f"{RUN_DIR}/run.json",
        model=f"{RUN_DIR}/model.pt",
    log:
        f"{R}/logs/train/{{dataset}}/{{model}}/{{optimizer}}/seed{{seed}}.log",
    benchmark:
        TRAIN_BENCHMARK
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "train.py"),
        spec=train_spec,
        out=lambda wildcards, output: os.path.dirname(output.metrics),
    threads: TRAIN["threads"]
    resources:
        mem_mb=TRAIN["mem_mb"],
        runtime=lambda wildcards, attempt: int(TRAIN["epochs"] * TRAIN["minutes_per_epoch"] * attempt) + 5,
        # One GPU share: `--resources gpu_percent=100` runs train.runs_per_gpu jobs side by side per GPU.
        gpu_percent=TRAIN["gpus"] * (100 // TRAIN["runs_per_gpu"]),
        # The GPU request as SLURM gres (sbatch --gres=gpu:G); a profile may ask for GPU shards instead.
        **train_gres(),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --out {params.out} --threads {threads} "
        "> {log} 2>&1"
