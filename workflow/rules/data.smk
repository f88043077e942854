# 1. Data: one canonical copy of the data set from the configured source (SPEC §2.1).


rule prepare_data:
    output:
        npz=PLAN.data_file,
        summary=PLAN.data_summary,
    log:
        f"resources/logs/prepare_data_{os.path.basename(PLAN.data_file)}.log",
    params:
        py=PY,
        script=os.path.join(SCRIPTS, "prepare_data.py"),
        # Only the source and its own settings: an unused setting never rebuilds the data.
        spec=json.dumps(PLAN.data_spec, sort_keys=True),
        # Where downloads go does not change the data: derived (takes output), so no rerun trigger.
        download_dir=lambda wildcards, output: config["data"]["download_dir"],
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} {params.script} --spec {params.spec:q} --download-dir {params.download_dir:q} "
        "--out {output.npz:q} --summary {output.summary:q} > {log:q} 2>&1"
