"""The study's plan: its runs, their result specs and execution settings, names → paths, the data file."""

import json

import pytest

from optimbench import config as study_config
from optimbench import study
from helpers import ROOT


def load(**overrides):
    """config.yaml with overrides merged, validated."""
    base = study_config.load_yaml_files([ROOT / "config.yaml"])
    return study_config.validate(study_config.deep_merge(base, overrides))


def test_one_training_run_per_optimizer_and_seed_with_its_files():
    plan = study.plan(load(train={"optimizers": ["SGD", "Adam"], "seeds": [0, 3]}))
    assert [(r.optimizer, r.seed) for r in plan.train_runs] == [("SGD", 0), ("SGD", 3), ("Adam", 0), ("Adam", 3)]
    run = plan.train_run("Adam", 3)
    assert run.dir == "results/train/cifar10/resnet18_article/Adam/seed3"
    assert run.file("metrics.csv") == f"{run.dir}/metrics.csv"
    assert run.benchmark == "results/benchmarks/train/cifar10/resnet18_article/Adam/seed3.tsv"
    assert run.spec["optimizer_name"] == "Adam" and run.spec["seed"] == 3 and run.spec["data"] == plan.data_file
    assert plan.report_html == "results/report/study.html" and plan.plan_file == "results/plan.json"


def test_the_result_spec_holds_what_changes_numbers_and_nothing_else():
    config = load(train={"compile": "off", "threads": 7, "gpus": 2, "runs_per_gpu": 2, "mem_mb": 999})
    run = study.plan(config).train_run("SGD", 0)
    assert run.execution == {"compile": "off"}
    assert "compile" not in run.spec and "threads" not in run.spec and "gpus" not in run.spec
    assert run.spec["optimizer"] == {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}, "demon": False}
    assert set(run.spec) == {"dataset", "data", "model", "seed", "optimizer_name", "optimizer",
                             *study.TRAIN_RESULT_KEYS}
    # a citation never reaches the spec; a learning rate does
    cited = study.plan(load(optimizers={"SGD": {"paper": "someone else"}})).train_run("SGD", 0)
    assert cited.spec == run.spec
    faster = study.plan(load(optimizers={"SGD": {"kwargs": {"lr": 0.5}}})).train_run("SGD", 0)
    assert faster.spec["optimizer"]["kwargs"]["lr"] == 0.5


def test_names_with_dots_map_to_distinct_paths_everywhere():
    config = load(descent={"methods": {"m-0.1": {"update": "momentum", "momentum": 0.1, "lr": 1e-5},
                                       "m-0.9": {"update": "momentum", "momentum": 0.9, "lr": 1e-5}},
                           "groups": [{"name": "g.1", "functions": ["ackley"], "methods": ["m-0.1", "m-0.9"],
                                       "gradients": ["as-printed", "central"]}]},
                  optimizers={"Adam.v2": {"class": "Adam"}}, train={"optimizers": ["Adam.v2"]})
    plan = study.plan(config)
    figures = [r.figure for r in plan.descent_runs]
    dirs = [r.dir for r in plan.descent_runs]
    assert len(set(figures)) == len(figures) == 4 and len(set(dirs)) == 4
    assert "results/figures/descent/runs/g.1/ackley/m-0.1/as-printed.png" in figures
    assert plan.train_runs[0].dir.endswith("/Adam.v2/seed0")


@pytest.mark.parametrize("where, overrides", [
    ("optimizers.SGD fast", {"optimizers": {"SGD fast": {"class": "SGD"}}, "train": {"optimizers": ["SGD fast"]}}),
    ("optimizers.Adam/fast", {"optimizers": {"Adam/fast": {"class": "Adam"}}}),
    ("descent.methods.a b", {"descent": {"methods": {"a b": {"update": "vanilla", "lr": 0.1}}}}),
    ("descent.groups[0].name", {"descent": {"groups": [{"name": "../up", "functions": ["ackley"],
                                                        "methods": ["SGD"], "gradients": ["autograd"]}]}}),
])
def test_names_that_cannot_be_a_folder_are_refused_with_the_rule(where, overrides):
    with pytest.raises(study_config.ConfigError) as error:
        study.plan(load(**overrides))
    assert where in str(error.value) and "no spaces or slashes" in str(error.value)


def test_each_descent_group_keeps_its_own_stop_rule_and_epoch_cap():
    config = load(descent={"max_epochs": 20000, "h": 1e-3, "groups": [
        {"name": "article", "functions": ["ackley"], "methods": ["article-vanilla"], "gradients": ["central"]},
        {"name": "fixed", "functions": ["rosenbrock"], "methods": ["Adam"], "gradients": ["autograd"],
         "early_stop": False, "max_epochs": 38, "kwargs": {"lr": 0.05}, "start": [0.5, 0.5]}]})
    plan = study.plan(config)
    article = plan.descent_run("article", "ackley", "article-vanilla", "central").spec
    fixed = plan.descent_run("fixed", "rosenbrock", "Adam", "autograd").spec
    assert (article["tol"], article["max_epochs"], article["kind"], article["lr"]) == (1e-3, 20000, "article", 1e-5)
    assert article["start"] == [-2.0, -2.0]
    assert (fixed["tol"], fixed["max_epochs"], fixed["kind"], fixed["lr"]) == (0.0, 38, "optimizer", 0.05)
    assert fixed["start"] == [0.5, 0.5] and fixed["kwargs"] == {"lr": 0.05}
    assert "paper" not in fixed["optimizer"]


def test_the_data_file_is_keyed_by_the_settings_that_determine_it():
    digits = study.plan(load(data={"source": "digits"}))
    other_split = study.plan(load(data={"source": "digits", "digits": {"test_fraction": 0.5}}))
    unused = study.plan(load(data={"source": "digits", "synthetic": {"train_size": 500}}))
    assert digits.data_file != other_split.data_file and digits.data_file.startswith("resources/data/digits-")
    assert unused.data_file == digits.data_file and unused.data_spec == digits.data_spec
    assert digits.data_spec == {"source": "digits", "digits": {"test_fraction": 0.25, "seed": 0}}
    assert study.plan(load()).data_file == "resources/data/cifar10.npz"  # the download is the same everywhere
    assert digits.train_runs[0].spec["data"] == digits.data_file


def test_the_plan_round_trips_through_its_file(tmp_path):
    plan = study.plan(load(train={"optimizers": ["SGD"], "seeds": [0, 1]}))
    study.write_plan(plan.to_json(), tmp_path / "plan.json")
    read = study.read_plan(tmp_path / "plan.json")
    assert [r["dir"] for r in read["train_runs"]] == [r.dir for r in plan.train_runs]
    assert read["descent_runs"][0]["spec"] == plan.descent_runs[0].spec
    assert read["settings"]["train"]["optimizers"] == ["SGD"] and read["settings"]["confidence"] == 0.95


def test_missing_runs_lists_every_result_not_on_disk(tmp_path, capsys):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(json.dumps({"train": {"optimizers": ["SGD"], "seeds": [0, 1]},
                                       "descent": {"groups": []}}))
    plan = study.plan(study_config.load([ROOT / "config.yaml", config_file]))
    done = tmp_path / plan.train_runs[0].file("metrics.csv")
    done.parent.mkdir(parents=True)
    done.write_text("epoch\n")
    assert study.missing_runs(plan, tmp_path) == [plan.train_runs[1].file("metrics.csv")]
    with pytest.raises(SystemExit):
        study.main([str(ROOT / "config.yaml"), str(config_file), "--missing", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "1 run(s) of this study have no results yet" in out and "seed1/metrics.csv" in out and "make study" in out


def test_tuning_plans_trials_selections_and_final_runs():
    config = load(data={"source": "digits"}, train={"optimizers": ["SGD", "Adam"], "seeds": [0, 1]},
                  tune={"enabled": True, "trials": 3, "validation_size": 300, "epochs": 2, "sampler": "grid",
                        "optimizers": ["Adam"], "space": {"Adam": {"lr": {"low": 1e-3, "high": 1e-1}}}})
    plan = study.plan(config)
    trials = plan.tune["trials"]
    assert [(t["optimizer"], t["trial"]) for t in trials] == [("Adam", 0), ("Adam", 1), ("Adam", 2)]
    assert [t["spec"]["optimizer"]["kwargs"]["lr"] for t in trials] == pytest.approx([1e-3, 1e-2, 1e-1])
    assert all(t["spec"]["epochs"] == 2 and t["spec"]["test"] == "never" for t in trials)
    assert trials[0]["spec"]["validation"] == plan.tune["split_file"] and "-validation-300-seed0" in plan.tune["split_file"]
    assert trials[1]["dir"] == "results/tune/digits/resnet18_article/Adam/trial1"
    assert plan.tune["selections"] == {"Adam": "results/tune/digits/resnet18_article/Adam/selected.json"}
    finals = plan.tune["finals"]
    assert [(r.optimizer, r.seed) for r in finals] == [("Adam", 0), ("Adam", 1)]
    assert finals[0].spec["test"] == "final" and finals[0].dir == "results/tuned/train/digits/resnet18_article/Adam/seed0"
    assert "execution" not in json.loads(plan.to_json())["tune"]["finals"][0]


@pytest.mark.parametrize("tune_cfg, message", [
    ({"validation_size": 1340}, "tune.validation_size = 1340: the 1,348 training images"),
    ({"optimizers": ["Adamm"]}, "tune.optimizers: \\['Adamm'\\] are not in the optimizers table"),
    ({"space": {"default": {"lrr": {"low": 0.1, "high": 1}}}}, "tune.space.default.lrr"),
    ({"space": {"default": {"lr": {"low": 0.0, "high": 1}}}}, "log range must stay above 0"),
])
def test_bad_tuning_settings_are_refused_before_any_job(tune_cfg, message):
    with pytest.raises(study_config.ConfigError, match=message):
        study.plan(load(data={"source": "digits"}, train={"optimizers": ["SGD"]},
                        tune={"enabled": True, "validation_size": 300, **tune_cfg}))
