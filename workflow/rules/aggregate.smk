# 4. Aggregate: pandas tables across runs (SPEC §2.4).

TRAIN_TABLES = ["epochs_long", "epoch_stats", "seed_summary", "optimizer_summary", "article_claims", "cost"]
DESCENT_TABLES = ["descent_runs", "descent_reproduction"]


rule aggregate_train:
    input:
        metrics=train_outputs("metrics.csv"),
        runs=train_outputs("run.json"),
        benchmarks=per_train_run(TRAIN_BENCHMARK),
    output:
        expand(f"{TABLES}/{{table}}.{{ext}}", table=TRAIN_TABLES, ext=["csv", "parquet"]),
    log:
        f"{R}/logs/aggregate_train.log",
    params:
        py=PY,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        script=os.path.join(SCRIPTS, "aggregate.py"),
        target=TRAIN["target_accuracy"],
        confidence=config["aggregate"]["confidence"],
        gpu_share=TRAIN["gpus"] / TRAIN["runs_per_gpu"],
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} train --metrics {input.metrics} --target {params.target} "
        "--confidence {params.confidence} --benchmarks {input.benchmarks} --gpu-share {params.gpu_share} "
        "--out {params.out} > {log} 2>&1"


rule aggregate_descent:
    input:
        descent_outputs("summary.csv"),
    output:
        expand(f"{TABLES}/{{table}}.{{ext}}", table=DESCENT_TABLES, ext=["csv", "parquet"]),
    log:
        f"{R}/logs/aggregate_descent.log",
    params:
        py=PY,
        out=lambda wildcards, output: os.path.dirname(output[0]),
        script=os.path.join(SCRIPTS, "aggregate.py"),
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} {params.script} descent --summaries {input} --out {params.out} > {log} 2>&1"
