# 4. Aggregate: pandas tables across runs (SPEC §2.4).

TRAIN_TABLES = ["runs", "epochs_long", "epoch_stats", "seed_summary", "optimizer_summary", "article_claims", "cost",
                # across problems: the problems, Dolan-More performance ratios and profiles, per-problem ranks
                "problems", "performance_ratios", "performance_profile", "profile_score", "problem_ranks",
                "rank_summary"]
DESCENT_TABLES = ["descent_runs", "descent_reproduction"]


rule aggregate_train:
    input:
        plan=PLAN_FILE,
        metrics=PLAN.train_files("metrics.csv"),
        runs=PLAN.train_files("run.json"),
        benchmarks=[run.benchmark for run in PLAN.train_runs],
    output:
        expand(f"{TABLES}/{{table}}.{{ext}}", table=TRAIN_TABLES, ext=["csv", "parquet"]),
    log:
        f"{R}/logs/aggregate_train.log",
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
        "{params.py} {params.script} descent --plan {input.plan:q} --out {params.out:q} > {log:q} 2>&1"
