# 1. Data: one canonical copy of each problem's data set from its source (SPEC §2.1), one reader per format.


rule prepare_data:
    output:
        npz=runs.DATA_FILE,
        summary=runs.DATA_SUMMARY,
    log:
        runs.DATA_LOG,
    params:
        py=PY,
        dataset=lambda wildcards: PLAN.data[wildcards.stem]["spec"]["dataset"],
        # Only the data set, the source and its own settings: an unused setting never rebuilds the data.
        spec=lambda wildcards: json.dumps(PLAN.data[wildcards.stem]["spec"], sort_keys=True),
        # Where downloads go does not change the data: derived (takes output), so no rerun trigger.
        download_dir=lambda wildcards, output: config["data"]["download_dir"],
    conda:
        "../../envs/torch.yaml"
    shell:
        "{params.py} -m optimbench.formats --dataset {params.dataset} --spec {params.spec:q} "
        "--download-dir {params.download_dir:q} --out {output.npz:q} --summary {output.summary:q} > {log:q} 2>&1"
