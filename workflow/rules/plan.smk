# 0. The plan: which runs this study holds, their specs and files (optimbench.plan), as one file that
#    aggregation, figures and the report read.


rule plan:
    output:
        PLAN_FILE,
    log:
        stage_log("plan"),
    params:
        plan=PLAN.to_json(),
    run:
        write_plan(params.plan, output[0])
