# 7. Report: the papermill-executed notebook, exported to self-contained HTML (SPEC §2.6).


rule report:
    input:
        notebook=os.path.join(BASE, "report", "study.ipynb"),
        plan=PLAN_FILE,
        tables=table_files(REPORT_TABLES),
        figures=TRAIN_FIGURES + [DESCENT_VIEWS] + DESCENT_ALL_RUNS + DESCENT_3D + (TUNE_FIGURES if TUNE else []),
    output:
        # `update`: Snakemake neither deletes the previous report before the job nor leaves it deleted when the
        # job fails (optimbench.render replaces both files atomically and says why a render failed).
        executed=update(f"{R}/report/study.ipynb"),
        html=report(update(REPORT_HTML), caption="../../report/study.rst", category="Report"),
    log:
        stage_log("report"),
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "report.py"),
        parameters=lambda wildcards, input: json.dumps(
            {
                "plan_file": input.plan,
                "tables_dir": TABLES,
                "figures_dir": FIGURES,
                "report_dir": os.path.dirname(REPORT_HTML),
            }
        ),
    conda:
        "../../envs/report.yaml"
    shell:
        "{params.py} {params.script} --notebook {input.notebook:q} --executed {output.executed:q} "
        "--html {output.html:q} --parameters {params.parameters:q} > {log:q} 2>&1"
