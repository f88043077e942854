# 1. Data: one canonical copy of the data set from the configured source (SPEC §2.1).


rule prepare_data:
    output:
        npz=DATA_NPZ,
        summary=DATA_SUMMARY,
    log:
        f"resources/logs/prepare_data_{DATASET}.log",
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "prepare_data.py"),
        spec=json.dumps(config["data"]),
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --out {output.npz} "
        "--summary {output.summary} > {log} 2>&1"
