# 2b. Published runs (optimbench.published): the field imported from its source (config `published`), each run a
# folder like an own run's, its optimizer named with its source. Downloads are verified and cached (CACHE).


rule import_published:
    input:
        plan=PLAN_FILE,
    output:
        metrics=PLAN.published_files("metrics.csv"),
        runs=PLAN.published_files("run.json"),
    log:
        stage_log("import_published"),
    params:
        py=PY,
        cache=PUBLISHED_CACHE,
    conda:
        "../../envs/analysis.yaml"
    shell:
        "{params.py} -m optimbench.published --plan {input.plan:q} --cache {params.cache:q} > {log:q} 2>&1"
