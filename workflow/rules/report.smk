# 6. Report: the papermill-executed notebook, exported to self-contained HTML (SPEC §2.6).


rule report:
    input:
        notebook=os.path.join(BASE, "report", "study.ipynb"),
        plan=PLAN_FILE,
        tables=expand(f"{TABLES}/{{table}}.parquet", table=TRAIN_TABLES + DESCENT_TABLES + (TUNE_TABLES if TUNE else [])),
        figures=rules.figures_train.output + rules.figures_descent.output + (rules.figures_tune.output if TUNE else []),
    output:
        executed=f"{R}/report/study.ipynb",
        html=report(REPORT_HTML, caption="../../report/study.rst", category="Report"),
    log:
        f"{R}/logs/report.log",
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "report.py"),
        parameters=lambda wildcards, input: json.dumps({"plan_file": input.plan, "tables_dir": TABLES,
                                                        "figures_dir": FIGURES}),
    conda:
        "../../envs/report.yaml"
    shell:
        "{params.py} {params.script} --notebook {input.notebook:q} --executed {output.executed:q} "
        "--html {output.html:q} --parameters {params.parameters:q} > {log:q} 2>&1"
