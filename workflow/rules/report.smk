# 6. Report: the papermill-executed notebook, exported to self-contained HTML (SPEC §2.6).


rule report:
    input:
        notebook=os.path.join(BASE, "report", "study.ipynb"),
        tables=expand(f"{TABLES}/{{table}}.parquet", table=TRAIN_TABLES + DESCENT_TABLES),
        figures=rules.figures_train.output + rules.figures_descent.output,
    output:
        executed=f"{R}/report/study.ipynb",
        html=report(REPORT_HTML, caption="../../report/study.rst", category="Report"),
    log:
        f"{R}/logs/report.log",
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "report.py"),
        parameters=lambda wildcards: json.dumps({"results_dir": R, "tables_dir": TABLES, "figures_dir": FIGURES,
                                                 "config_json": json.dumps(config),
                                                 "title": config["report"]["title"]}),
    conda:
        "../../envs/report.yaml"
    shell:
        "{params.py} {params.script} --notebook {input.notebook} --executed {output.executed} "
        "--html {output.html} --parameters {params.parameters:q} > {log} 2>&1"
