# 0. The plan: which runs this study holds, their specs and files (optimbench.plan), as one file that
#    aggregation, figures and the report read.


rule plan:
    output:
        PLAN_FILE,
    log:
        stage_log("plan"),
    params:
        # The plan's digest, not its JSON (a changed plan's dry-run reason would print the whole plan); the runs
        # that changed show their own reasons.
        plan=f"{len(PLAN.train_runs)} training runs, {len(PLAN.descent_runs)} descent runs, sha256 {PLAN_DIGEST}",
    run:
        write_plan(PLAN.to_json(), output[0])
