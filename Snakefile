# optimbench: optimizers compared on CIFAR-10 (ResNet18) and on 2-D test functions (SPEC §2).
import os

from snakemake.utils import min_version

min_version("9.0")


# The study's defaults; `--configfile preset.yaml` overrides parts of it (in any working directory).
configfile: os.path.join(workflow.basedir, "config.yaml")


# The stages in DAG order; common.smk holds every name they share (and the list of local rules).
include: "workflow/rules/common.smk"
include: "workflow/rules/plan.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/published.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/descent.smk"
include: "workflow/rules/tune.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/report.smk"


# The report, and every run's own result: a run deleted by hand is trained again.
rule all:
    input:
        REPORT_HTML,
        PLAN.train_files("metrics.csv"),
        PLAN.descent_files("summary.csv"),
        PLAN.tuned_files("metrics.csv"),
