# 3. Descent (SPEC §2.3): one job per group x test function runs every method x gradient of the group on it
#    (a run takes well under a second, a job's start-up with torch about two).


rule descent:
    output:
        trajectory=f"{DESCENT_DIR}/trajectory.csv",
        summary=f"{DESCENT_DIR}/summary.csv",
    log:
        DESCENT_LOG,
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "descent.py"),
        spec=descent_specs,
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --trajectory {output.trajectory:q} "
        "--summary {output.summary:q} > {log:q} 2>&1"
