# 3. Descent: one job per test function x method x gradient (SPEC §2.3).


rule descent:
    output:
        trajectory=f"{DESCENT_DIR}/trajectory.csv",
        summary=f"{DESCENT_DIR}/summary.csv",
    log:
        DESCENT_LOG,
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "descent.py"),
        spec=descent_spec,
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --trajectory {output.trajectory:q} "
        "--summary {output.summary:q} > {log:q} 2>&1"
