"""The study's plan: its runs, their result specs and execution settings, names → paths, the data file."""

import hashlib
import json
import re

import pytest
import torch

from optimbench import config as study_config
from optimbench import plan as plans
from optimbench import runs as plans_runs
from optimbench import specs
from optimbench.errors import ConfigError

from helpers import ROOT


def load(**overrides):
    """config.yaml with overrides merged, validated."""
    base = study_config.load_yaml_files([ROOT / "config.yaml"])
    return study_config.validate(study_config.deep_merge(base, overrides))


def checked(override: dict) -> plans.Plan:
    """The plan of config.yaml with `override` merged: every check, the config's and the plan's."""
    merged = study_config.deep_merge(study_config.load_yaml_files([ROOT / "config.yaml"]), override)
    return plans.plan(study_config.validate(merged))


def test_one_training_run_per_optimizer_and_seed_with_its_files():
    plan = plans.plan(load(train={"optimizers": ["SGD", "Adam"], "seeds": [0, 3]}))
    assert [(r.optimizer, r.seed) for r in plan.train_runs] == [("SGD", 0), ("SGD", 3), ("Adam", 0), ("Adam", 3)]
    run = plan.train_run("cifar10-resnet18", "Adam", 3)
    assert run.dir == "results/train/cifar10-resnet18/Adam/seed3"
    assert run.file("metrics.csv") == f"{run.dir}/metrics.csv"
    assert run.spec["optimizer_name"] == "Adam" and run.spec["seed"] == 3
    assert run.spec["data"] == plan.data_file("cifar10-resnet18") == "resources/data/cifar10.npz"
    assert run.spec["problem"] == "cifar10-resnet18" and run.spec["model"] == "resnet18_article"
    assert plan.report_html == "results/report/study.html" and plan.plan_file == "results/plan.json"


def test_the_result_spec_holds_what_changes_numbers_and_nothing_else():
    config = load(train={"compile": "off", "threads": 7, "gpus": 2, "runs_per_gpu": 2, "mem_mb": 999})
    run = plans.plan(config).train_run("cifar10-resnet18", "SGD", 0)
    assert run.execution == {"compile": "off"}
    assert "compile" not in run.spec and "gpus" not in run.spec and "mem_mb" not in run.spec
    assert run.spec["threads"] == 7  # a CPU run's numbers change with the thread count (issue 27.6)
    assert run.spec["optimizer"] == {"class": "SGD", "kwargs": {"lr": 0.01, "momentum": 0.9}, "demon": False,
                                     "code": {"torch": torch.__version__}}  # the code behind the class (issue 26)
    assert set(run.spec) == {"problem", "dataset", "data", "model", "seed", "optimizer_name", "optimizer",
                             *specs.TRAIN_RESULT_KEYS}
    # a citation never reaches the spec; a learning rate does
    cited = plans.plan(load(optimizers={"SGD": {"paper": "someone else"}})).train_run("cifar10-resnet18", "SGD", 0)
    assert cited.spec == {**run.spec, "threads": 2}
    faster = plans.plan(load(optimizers={"SGD": {"kwargs": {"lr": 0.5}}})).train_run("cifar10-resnet18", "SGD", 0)
    assert faster.spec["optimizer"]["kwargs"]["lr"] == 0.5


def test_names_with_dots_map_to_distinct_paths_everywhere():
    config = load(descent={"methods": {"m-0.1": {"update": "momentum", "momentum": 0.1, "lr": 1e-5},
                                       "m-0.9": {"update": "momentum", "momentum": 0.9, "lr": 1e-5}},
                           "groups": [{"name": "g.1", "functions": ["ackley"], "methods": ["m-0.1", "m-0.9"],
                                       "gradients": ["as-printed", "central"]}]},
                  optimizers={"Adam.v2": {"class": "Adam"}}, train={"optimizers": ["Adam.v2"]})
    plan = plans.plan(config)
    figures = [r.figure for r in plan.descent_runs]
    dirs = [r.dir for r in plan.descent_runs]
    assert len(set(figures)) == len(figures) == 4 and set(dirs) == {"results/descent/g.1/ackley"}  # one job
    assert plan.descent_files("summary.csv") == ["results/descent/g.1/ackley/summary.csv"]
    assert [(r.method, r.gradient) for r in plan.descent_job("g.1", "ackley")] == [
        ("m-0.1", "as-printed"), ("m-0.1", "central"), ("m-0.9", "as-printed"), ("m-0.9", "central")]
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
    with pytest.raises(ConfigError) as error:
        plans.plan(load(**overrides))
    assert where in str(error.value) and "no spaces or slashes" in str(error.value)


def test_each_descent_group_keeps_its_own_stop_rule_and_epoch_cap():
    config = load(descent={"max_epochs": 20000, "h": 1e-3, "groups": [
        {"name": "article", "functions": ["ackley"], "methods": ["article-vanilla"], "gradients": ["central"]},
        {"name": "fixed", "functions": ["rosenbrock"], "methods": ["Adam"], "gradients": ["autograd"],
         "early_stop": False, "max_epochs": 38, "kwargs": {"lr": 0.05}, "start": [0.5, 0.5]}]})
    plan = plans.plan(config)
    article = plan.descent_run("article", "ackley", "article-vanilla", "central").spec
    fixed = plan.descent_run("fixed", "rosenbrock", "Adam", "autograd").spec
    assert (article["tol"], article["max_epochs"], article["kind"], article["lr"]) == (1e-3, 20000, "article", 1e-5)
    assert article["start"] == [-2.0, -2.0]
    assert (fixed["tol"], fixed["max_epochs"], fixed["kind"], fixed["lr"]) == (0.0, 38, "optimizer", 0.05)
    assert fixed["start"] == [0.5, 0.5] and fixed["kwargs"] == {"lr": 0.05}
    assert "paper" not in fixed["optimizer"]


def test_the_data_file_is_keyed_by_the_settings_that_determine_it():
    digits = plans.plan(load(data={"source": "digits"}))
    other_split = plans.plan(load(data={"source": "digits", "digits": {"test_fraction": 0.5}}))
    unused = plans.plan(load(data={"source": "digits", "synthetic": {"train_size": 500}}))
    problem = "cifar10-resnet18"
    assert digits.data_file(problem) != other_split.data_file(problem)
    assert digits.data_file(problem).startswith("resources/data/cifar10-digits-")
    assert unused.data == digits.data
    assert digits.data[digits.problem_data[problem]]["spec"] == {
        "dataset": "cifar10", "source": "digits", "digits": {"test_fraction": 0.25, "seed": 0}}
    assert plans.plan(load()).data_file(problem) == "resources/data/cifar10.npz"  # the download is the same everywhere
    assert digits.train_runs[0].spec["data"] == digits.data_file(problem)


def test_every_problem_gets_every_optimizer_and_seed_with_its_own_data_model_and_settings():
    config = load(problems=["digits-resnet18", "digits-vae", "ptb-lstm"], data={"source": "synthetic"},
                  train={"optimizers": ["SGD", "Adam"], "seeds": [0, 1], "width": 8, "epochs": 3},
                  problem_settings={"digits-vae": {"width": 16, "epochs": 2, "target": 150.0},
                                    "ptb-lstm": {"eval_batch_size": 10}})  # 1000 streams: too many for its test text
    plan = plans.plan(config)
    assert len(plan.train_runs) == 3 * 2 * 2
    vae = plan.train_run("digits-vae", "Adam", 1)
    assert vae.dir == "results/train/digits-vae/Adam/seed1" and vae.model == "vae" and vae.dataset == "mnist"
    assert (vae.spec["width"], vae.spec["epochs"], vae.spec["problem"]) == (16, 2, "digits-vae")
    resnet = plan.train_run("digits-resnet18", "SGD", 0)
    assert (resnet.spec["model"], resnet.spec["width"], resnet.spec["epochs"]) == ("resnet18_article", 8, 3)
    lstm = plan.train_run("ptb-lstm", "SGD", 0)
    assert lstm.spec["width"] is None and lstm.spec["model"] == "lstm_lm"  # the paper's size
    # a problem pinned to digits keeps it; the others take data.source, each in its own format and file
    specs = {p: plan.data[stem]["spec"] for p, stem in plan.problem_data.items()}
    assert specs["digits-resnet18"]["source"] == specs["digits-vae"]["source"] == "digits"
    assert specs["ptb-lstm"] == {"dataset": "ptb", "source": "synthetic", "synthetic": {"seed": 0}}
    assert len({plan.data_file(p) for p in plan.problem_data}) == 3
    problems = plan.settings["problems"]
    assert list(problems) == ["digits-resnet18", "digits-vae", "ptb-lstm"]
    assert (problems["digits-vae"]["primary"], problems["digits-vae"]["higher_is_better"],
            problems["digits-vae"]["target"]) == ("test_neg_elbo", False, 150.0)
    assert problems["ptb-lstm"]["primary"] == "test_perplexity" and problems["ptb-lstm"]["target"] == 100.0
    assert {"val_perplexity", "train_loss", "test_perplexity"} <= {m["name"] for m in problems["ptb-lstm"]["metrics"]}
    assert problems["digits-resnet18"]["higher_is_better"] is True


def test_adding_a_problem_adds_only_its_runs_and_changes_no_other_spec():
    one = plans.plan(load(problems=["digits-resnet18"], train={"optimizers": ["SGD"], "seeds": [0]}))
    two = plans.plan(load(problems=["digits-resnet18", "digits-vae"], train={"optimizers": ["SGD"], "seeds": [0]}))
    before = {r.dir: r.spec for r in one.train_runs}
    after = {r.dir: r.spec for r in two.train_runs}
    assert {d: after[d] for d in before} == before and len(after) == 2


@pytest.mark.parametrize("overrides, message", [
    ({"problems": ["mnist-vea"]}, r"problems\[0\] = 'mnist-vea' is not a known test problem.*Did you mean 'mnist-vae'"),
    ({"problem_settings": {"cifar10-resnet19": {"width": 4}}}, r"problem_settings.cifar10-resnet19.*Did you mean"),
    ({"train": {"target_accuracy": 0.7}}, r"train.target_accuracy = 0.7.*problem_settings.<problem>.target"),
    ({"problems": ["ptb-lstm"], "data": {"source": "digits"}}, r"'ptb-lstm'.*not a source of ptb"),
    ({"problems": ["mnist-vae"], "data": {"source": "archive"}}, r"data.archives.mnist"),
    ({"problems": ["digits-vae"], "problem_settings": {"digits-vae": {"batch_size": 5000}}},
     r"problem_settings.digits-vae.batch_size = 5000 exceeds the 1,348 training examples"),
    ({"problems": ["digits-vae"], "tune": {"enabled": True, "select_by": "final_val_acc", "validation_size": 300}},
     r"select_by = 'final_val_acc': problem 'digits-vae' reports no val_acc"),
    # a target outside the primary metric's range could never be reached: accuracy as a percentage
    ({"problem_settings": {"cifar10-resnet18": {"target": 80}}},
     r"problem_settings.cifar10-resnet18.target = 80 is outside test_acc's range \[0.0, 1.0\]"),
    ({"problems": ["ptb-lstm"], "data": {"source": "synthetic"}, "problem_settings": {"ptb-lstm": {"target": 0.5}}},
     r"problem_settings.ptb-lstm.target = 0.5 is outside test_perplexity's range \[1.0, inf\]"),
    ({"problems": ["digits-vae"], "problem_settings": {"digits-vae": {"target": -5}}},
     r"problem_settings.digits-vae.target = -5 is outside test_neg_elbo's range \[0.0, inf\]"),
    # a token stream cut into more parallel streams than it has tokens for two rows (paper_models.batchify): the
    # synthetic PTB test text holds at least 100 lines x (4 words + <eos>) = 500 tokens
    ({"problems": ["ptb-lstm"], "data": {"source": "synthetic"}},
     r"train.eval_batch_size = 1000 cuts the test stream of problem 'ptb-lstm' .*at least 500 tokens.*at most 250"),
    ({"problems": ["ptb-lstm"], "data": {"source": "synthetic"},
      "problem_settings": {"ptb-lstm": {"eval_batch_size": 10, "batch_size": 2000}}},
     r"problem_settings.ptb-lstm.batch_size = 2000 cuts the training stream .*at least 2,048 tokens.*at most 1024"),
    # a stratified validation split needs one image per class: 100 for CIFAR-100 (tune.validation_split)
    ({"problems": ["cifar100-vgg16"], "data": {"source": "synthetic"},
      "tune": {"enabled": True, "validation_size": 50}},
     r"tune.validation_size = 50: .*'cifar100-vgg16'.*choose a size between 100 and 1936"),
    # the model must build at the problem's width (CapsNet's primary capsules are 8-D)
    ({"problems": ["digits-capsnet"], "problem_settings": {"digits-capsnet": {"width": 12}}},
     r"problem_settings.digits-capsnet.width = 12: problem 'digits-capsnet' cannot build its model \(capsnet\): "
     r"CapsNet width must be a multiple of 8"),
    ({"problems": ["ptb-lstm"], "problem_settings": {"ptb-lstm": {"test_subset": 100}}},
     r"train.eval_batch_size = 1000 cuts the test stream .*100 tokens.*at most 50"),
])
def test_bad_problem_settings_are_refused_before_any_job(overrides, message):
    with pytest.raises(ConfigError, match=message):
        plans.plan(load(**overrides))


def test_token_streams_that_fit_their_batch_sizes_pass():
    """PTB's published streams (929,589 / 73,760 / 82,430 tokens) hold 1000 streams of two rows; the
    synthetic one (at least 2,048 / 500 / 500) does at eval_batch_size 250, the bound the message gives."""
    assert plans.plan(load(problems=["ptb-lstm"]))
    assert plans.plan(load(problems=["ptb-lstm"], data={"source": "synthetic"},
                           problem_settings={"ptb-lstm": {"eval_batch_size": 250, "batch_size": 1024}},
                           tune={"enabled": True}))


def test_the_plan_round_trips_through_its_file(tmp_path):
    plan = plans.plan(load(train={"optimizers": ["SGD"], "seeds": [0, 1]}))
    plans.write_plan(plan.to_json(), tmp_path / "plan.json")
    read = plans.read_plan(tmp_path / "plan.json")
    assert read == plan.__class__.from_json(plan.to_json()) and isinstance(read, plans.Plan)
    assert [r.dir for r in read.train_runs] == [r.dir for r in plan.train_runs]
    assert read.descent_runs[0].spec == plan.descent_runs[0].spec
    assert read.settings["train"]["optimizers"] == ["SGD"] and read.confidence == 0.95


def test_missing_runs_lists_every_result_not_on_disk(tmp_path, capsys):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(json.dumps({"train": {"optimizers": ["SGD"], "seeds": [0, 1]},
                                       "descent": {"groups": []}}))
    plan = plans.plan(study_config.load([ROOT / "config.yaml", config_file]))
    done = tmp_path / plan.train_runs[0].file("metrics.csv")
    done.parent.mkdir(parents=True)
    done.write_text("epoch\n")
    assert plans.missing_runs(plan, tmp_path) == [plan.train_runs[1].file("metrics.csv")]
    with pytest.raises(SystemExit):
        plans.main([str(ROOT / "config.yaml"), str(config_file), "--missing", "--workdir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "1 run(s) of this study have no results yet" in out and "seed1/metrics.csv" in out and "make study" in out


def test_tuning_plans_trials_selections_and_final_runs():
    config = load(data={"source": "digits"}, train={"optimizers": ["SGD", "Adam"], "seeds": [0, 1]},
                  tune={"enabled": True, "trials": 3, "validation_size": 300, "epochs": 2, "sampler": "grid",
                        "optimizers": ["Adam"], "space": {"Adam": {"lr": {"low": 1e-3, "high": 1e-1}}}})
    plan = plans.plan(config)
    trials = plan.tune.trials
    assert [(t.optimizer, t.trial) for t in trials] == [("Adam", 0), ("Adam", 1), ("Adam", 2)]
    assert [t.spec["optimizer"]["kwargs"]["lr"] for t in trials] == pytest.approx([1e-3, 1e-2, 1e-1])
    assert all(t.spec["epochs"] == 2 and t.spec["test"] == "never" for t in trials)
    split = plan.tune.split_files["cifar10-resnet18"]
    assert trials[0].spec["validation"] == split and "-validation-300-seed0" in split
    assert split.startswith(plan.data_file("cifar10-resnet18").removesuffix(".npz"))
    assert trials[1].dir == "results/tune/cifar10-resnet18/Adam/trial1"
    assert plan.tune.selections == {"cifar10-resnet18": {"Adam": "results/tune/cifar10-resnet18/Adam/selected.json"}}
    finals = plan.tune.finals
    assert [(r.optimizer, r.seed) for r in finals] == [("Adam", 0), ("Adam", 1)]
    assert finals[0].spec["test"] == "final" and finals[0].dir == "results/tuned/train/cifar10-resnet18/Adam/seed0"
    assert "execution" not in json.loads(plan.to_json())["tune"]["finals"][0]


@pytest.mark.parametrize("tune_cfg, message", [
    ({"validation_size": 1340}, "tune.validation_size = 1340: the 1,348 training examples"),
    ({"optimizers": ["Adamm"]}, "tune.optimizers: \\['Adamm'\\] are not in the optimizers table"),
    ({"space": {"default": {"lrr": {"low": 0.1, "high": 1}}}}, "tune.space.default.lrr"),
    ({"space": {"default": {"lr": {"low": 0.0, "high": 1}}}}, "log range must stay above 0"),
    # issue 27.10: a validation split larger than the training subset, a subset the split makes smaller
    ({"train_subset": 1300}, r"train.train_subset = 1300 with tune.validation_size = 300: .*1,348 training examples, "
                             r"1,048 after the split.*Use at most 1048"),
    # issue 27.9: a grid budget that cannot cover the space
    ({"trials": 5, "sampler": "grid", "space": {"default": {"lr": {"low": 1e-3, "high": 1.0},
                                                            "momentum": {"low": 0.0, "high": 0.9, "log": False}}}},
     r"tune.trials = 5 with tune.sampler = grid over tune.space.default: .*the nearest: 4 or 6"),
    ({"space": {"default": {"lr": {"low": 1e-3, "high": 1.0}, "nesterov": {"low": 0, "high": 1, "log": False}}}},
     r"tune.space.default.nesterov = .*'nesterov' is a boolean keyword .*\{choices: \[false, true\]\}"),
])
def test_bad_tuning_settings_are_refused_before_any_job(tune_cfg, message):
    tune_cfg = dict(tune_cfg)
    train = {"optimizers": ["SGD"], **({"train_subset": tune_cfg.pop("train_subset")} if "train_subset" in tune_cfg
                                       else {})}
    extra = {"problem_settings": tune_cfg.pop("problem_settings")} if "problem_settings" in tune_cfg else {}
    with pytest.raises(ConfigError, match=message):
        plans.plan(load(data={"source": "digits"}, train=train, **extra,
                        tune={"enabled": True, "validation_size": 300, **tune_cfg}))


@pytest.mark.parametrize("train, extra, key", [
    ({"train_subset": 200}, {}, "train.train_subset = 200"),
    ({}, {"problem_settings": {"cifar10-resnet18": {"train_subset": 100}}},
     "problem_settings.cifar10-resnet18.train_subset = 100")])
def test_a_validation_split_larger_than_the_training_subset_is_warned_about(train, extra, key):
    """Issue 27.10: accepted silently before; both readings are legitimate (a quick subset, a reliable split)."""
    with pytest.warns(UserWarning, match=rf"tune.validation_size = 300 exceeds {re.escape(key)} of problem "
                                         r"'cifar10-resnet18': trials will validate on more images than they train"):
        plans.plan(load(data={"source": "digits"}, train={"optimizers": ["SGD"], **train}, **extra,
                        tune={"enabled": True, "validation_size": 300}))


def test_tuning_runs_per_problem_and_ptb_validates_on_its_own_stream():
    config = load(problems=["digits-vae", "ptb-lstm"], data={"source": "synthetic"},
                  train={"optimizers": ["SGD"], "seeds": [0]}, problem_settings={"ptb-lstm": {"eval_batch_size": 10}},
                  tune={"enabled": True, "trials": 2, "validation_size": 300})
    tune = plans.plan(config).tune
    assert [(t.problem, t.trial) for t in tune.trials] == [("digits-vae", 0), ("digits-vae", 1),
                                                                      ("ptb-lstm", 0), ("ptb-lstm", 1)]
    assert tune.split_files["ptb-lstm"] is None and tune.trials[2].spec["validation"] == "valid"
    assert tune.split_files["digits-vae"].startswith("resources/data/mnist-digits-")
    assert set(tune.selections) == {"digits-vae", "ptb-lstm"} and tune.select_by == "final_val"


def test_a_selection_reads_only_its_own_part_of_the_plan():
    """The select rule's param: adding a problem or an optimizer changes no other selection's input."""
    tune = {"enabled": True, "trials": 2, "validation_size": 300, "optimizers": ["SGD"]}
    one = plans.plan(load(problems=["digits-resnet18"], tune=tune))
    more = plans.plan(load(problems=["digits-resnet18", "digits-vae"], tune={**tune, "optimizers": ["SGD", "Adam"]}))
    part = one.selection_plan("digits-resnet18", "SGD")
    assert part == more.selection_plan("digits-resnet18", "SGD")
    assert [t.trial for t in part.tune.trials] == [0, 1] and list(part.problems) == ["digits-resnet18"]
    assert part.tune.trials[0].spec == {} and part.tune.spaces == {"SGD": one.tune.spaces["SGD"]}


# ---------------------------------------------------------------- sizes known before any job (issue 14.9)
@pytest.mark.parametrize("train, message", [
    ({"batch_size": 5000}, r"train.batch_size = 5000 exceeds the 1,348 training examples used \(problem "
                           r"'cifar10-resnet18' \(cifar10, data.source 'digits'\) has 1,348 training and 449 test "
                           r"examples\).*Use at most 1348"),
    ({"train_subset": 100000}, r"train.train_subset = 100000 exceeds the data: .*1,348 training.*Use at most 1348"),
    ({"test_subset": 450}, r"train.test_subset = 450 exceeds the data: .*449 test examples. Use at most 449"),
    ({"train_subset": 100, "batch_size": 128}, r"train.batch_size = 128 exceeds the 100 training examples used"),
])
def test_sizes_beyond_the_digits_data_are_refused(train, message):
    with pytest.raises(ConfigError, match=message):
        checked({"data": {"source": "digits"}, "train": train})


def test_sizes_follow_the_source_settings():
    with pytest.raises(ConfigError, match="train.train_subset = 301 exceeds .*300 training and 50 test"):
        checked({"data": {"source": "synthetic", "synthetic": {"train_size": 300, "test_size": 50}},
               "train": {"train_subset": 301}})
    with pytest.raises(ConfigError, match="1,258 training and 539 test"):  # 1797 · 0.3 = 539.1
        checked({"data": {"source": "digits", "digits": {"test_fraction": 0.3}}, "train": {"train_subset": 1259}})
    assert checked({"data": {"source": "digits"}, "train": {"train_subset": 1348, "batch_size": 1348}})
    assert checked({"train": {"train_subset": 50000, "test_subset": 10000}})  # CIFAR-10's own sizes


def test_the_config_checker_names_a_bad_file_and_make_runs_it_before_snakemake(tmp_path):
    """Snakemake reads --configfile files before the workflow's code ('Config file is not valid JSON or
    YAML', no file, no line): `make` checks them with optimbench.plan --check first."""
    import subprocess

    from helpers import PYTHON, run_env

    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  seeds: [0, 1\n")
    result = subprocess.run([PYTHON, "-m", "optimbench.plan", "--check", str(ROOT / "config.yaml"), str(bad)],
                            env=run_env(), capture_output=True, text=True)
    assert result.returncode == 1 and f"config file {bad}, line 3, column 1: not valid YAML" in result.stderr
    dry = subprocess.run(["make", "-n", "study", f"CONFIG={bad}", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                         env=run_env(), capture_output=True, text=True)
    lines = dry.stdout.splitlines()
    check = next(i for i, line in enumerate(lines) if f"-m optimbench.plan --check {ROOT}/config.yaml {bad}" in line)
    assert check < next(i for i, line in enumerate(lines) if "bin/snakemake " in line)


@pytest.mark.parametrize("override, message", [
    # raised while planning (optimbench.specs), after the config's own checks
    ("problems: [cifar100-vgg16]\ndata: {source: archive}\n", "set data.archives.cifar100"),
    # plan-time checks: the checker must not say "config OK" to what Snakemake will refuse
    ("problems: [digits-vae]\ntune: {enabled: true, select_by: final_val_acc}\n",
     "tune.select_by = 'final_val_acc': problem 'digits-vae' reports no val_acc"),
    ("problems: [digits-vae]\ntune: {enabled: true, validation_size: 100000}\n",
     "tune.validation_size = 100000: the 1,348 training examples"),
])
def test_the_config_checker_reports_every_plan_error_without_a_traceback(tmp_path, override, message):
    import subprocess

    from helpers import PYTHON, run_env

    bad = tmp_path / "bad.yaml"
    bad.write_text(override)
    result = subprocess.run([PYTHON, "-m", "optimbench.plan", "--check", str(ROOT / "config.yaml"), str(bad)],
                            env=run_env(), capture_output=True, text=True)
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr and "config OK" not in result.stdout


def test_each_training_jobs_resources_come_from_its_own_spec_and_grow_with_the_attempt():
    """Issue 27.4 / 29.2: runtime from the job's epochs (a problem's own, a trial's), memory per problem."""
    from optimbench import problems

    config = load(problems=["cifar10-resnet18", "mnist-vae"], train={"epochs": 1, "minutes_per_epoch": 2},
                  problem_settings={"mnist-vae": {"epochs": 30, "minutes_per_epoch": 0.5, "mem_mb": 1500,
                                                  "threads": 3}},
                  tune={"enabled": True, "optimizers": ["SGD"], "trials": 2, "epochs": 4})
    plan = plans.plan(config)
    vae, cifar = plan.train_run("mnist-vae", "SGD", 0), plan.train_run("cifar10-resnet18", "SGD", 0)
    assert specs.job_resources(config, vae.spec) == {"mem_mb": 1500, "runtime": 30 * 0.5 + 5, "threads": 3}
    assert specs.job_resources(config, vae.spec, attempt=3) == {"mem_mb": 4500, "runtime": 3 * 15 + 5, "threads": 3}
    # no mem_mb anywhere in the config: the problem's measured default
    assert specs.job_resources(config, cifar.spec) == {"mem_mb": problems.get("cifar10-resnet18").mem_mb,
                                                       "runtime": 2 + 5, "threads": 2}
    assert specs.job_resources(config, plan.trial("mnist-vae", "SGD", 0).spec)["runtime"] == int(4 * 0.5) + 5
    assert specs.job_resources(config, plan.tuned_run("mnist-vae", "SGD", 0).spec)["runtime"] == 20
    study_wide = load(problems=["cifar10-resnet18"], train={"mem_mb": 2345})
    assert specs.job_resources(study_wide, cifar.spec)["mem_mb"] == 2345
# ---------------------------------------------------------------- trial settings take a step too (issue 27.3)
def test_a_trial_setting_that_cannot_step_is_refused_naming_the_space_and_the_trial():
    with pytest.raises(ConfigError, match=r"^tune\.space\.Adam\.capturable = True is refused by Adam \(Adam\) for "
                                          r"optimizer 'Adam' \(built and stepped once on cpu, in trial 2, "
                                          r".*'capturable': True.*\): "
                                          r"AssertionError: If capturable=True"):
        plans.plan(load(data={"source": "digits"}, train={"optimizers": ["Adam"], "device": "cpu"},
                        tune={"enabled": True, "validation_size": 300, "trials": 4, "sampler": "grid",  # + config's lr
                              "space": {"Adam": {"capturable": {"choices": [False, True]}}}}))


def test_a_tuned_optimizer_that_views_its_parameters_is_refused_where_the_trials_use_channels_last():
    """Issue 37.8 for the trials: an optimizer tuned but not trained (tune.optimizers) steps only in the trials'
    check, in the layout the trials' ResNet will have: AdamP's .view() of a channels-last weight is refused
    naming train.channels_last; contiguous trials take it."""
    tune = {"enabled": True, "validation_size": 300, "trials": 2, "optimizers": ["AdamP"]}
    cfg = {"data": {"source": "digits"}, "problems": ["digits-resnet18"], "tune": tune,
           "optimizers": {"AdamP": {"class": "pytorch_optimizer.AdamP"}}}
    with pytest.raises(ConfigError, match=r"^train\.channels_last: the train jobs of digits-resnet18 use channels-last "
                                          r".*optimizer 'AdamP' .*view size is not compatible"):
        plans.plan(load(**cfg, train={"device": "cpu", "width": 8, "channels_last": "on"}))
    plans.plan(load(**cfg, train={"device": "cpu", "width": 8, "channels_last": "off"}))


# ---------------------------------------------------------------- a large study, planned once (issue 38)
TUNED = {"data": {"source": "digits"}, "problems": ["digits-resnet18", "digits-vae"],
         "train": {"optimizers": ["SGD", "Adam", "Adagrad"], "seeds": [0, 1, 2]}, "descent": {"groups": []},
         "tune": {"enabled": True, "trials": 2, "validation_size": 300, "optimizers": ["Adam", "SGD"]}}


def merged(override: dict) -> dict:
    """config.yaml with `override` merged, not validated (what Snakemake hands the Snakefile)."""
    return study_config.deep_merge(study_config.load_yaml_files([ROOT / "config.yaml"]), override)


def test_every_run_is_found_by_its_identity_and_an_unknown_one_is_refused():
    plan = plans.plan(study_config.validate(merged(TUNED)))
    for run in plan.train_runs:  # wildcards arrive as strings
        assert plan.train_run(run.problem, run.optimizer, str(run.seed)) is run
    for trial in plan.tune.trials:
        assert plan.trial(trial.problem, trial.optimizer, str(trial.trial)) is trial
    for run in plan.tune.finals:
        assert plan.tuned_run(run.problem, run.optimizer, run.seed) is run
    assert [t.trial for t in plan.trials_of("digits-vae", "Adam")] == [0, 1]
    assert all(t.problem == "digits-vae" and t.optimizer == "Adam" for t in plan.trials_of("digits-vae", "Adam"))
    assert len(plan.train_runs) == 2 * 3 * 3 and len(plan.tune.trials) == 2 * 2 * 2
    with pytest.raises(KeyError):
        plan.train_run("digits-vae", "SGD", 7)
    with pytest.raises(KeyError):
        plan.trial("digits-vae", "Adagrad", 0)  # not tuned


def test_a_cached_plan_is_checked_and_built_once_then_read_back_unchanged(tmp_path, monkeypatch):
    config = study_config.validate(merged(TUNED), build=False)
    cache = plans.cache_file(config, tmp_path)
    assert cache == tmp_path / "results" / ".cache" / "plan.json"
    built, digest = plans.cached_plan(config, cache)
    assert built.to_json() == plans.plan(study_config.validate(merged(TUNED))).to_json()
    written = json.loads(cache.read_text())
    assert written["plan"] == built.to_json() and digest == written["digest"]
    assert digest == hashlib.sha256(built.to_json().encode()).hexdigest()[:16]

    def refuse(*args, **kwargs):
        raise AssertionError("planned or checked again")

    monkeypatch.setattr(plans, "build_checks", refuse)
    monkeypatch.setattr(plans, "plan", refuse)
    read, read_digest = plans.cached_plan(config, cache)
    assert read.to_json() == built.to_json() and read_digest == digest
    assert read.train_run("digits-vae", "Adam", 2).spec == built.train_run("digits-vae", "Adam", 2).spec


def test_the_cached_plan_follows_the_config_and_the_optimizer_code(tmp_path, monkeypatch):
    plugin = tmp_path / "lion.py"
    plugin.write_text((ROOT / "examples" / "optimizers" / "lion.py").read_text())
    override = {**TUNED, "optimizers": {"Lion": {"class": f"{plugin}:Lion", "kwargs": {"lr": 1e-4}}},
                "train": {"optimizers": ["SGD", "Lion"], "seeds": [0]}, "tune": {"enabled": False}}
    config = study_config.validate(merged(override), build=False)
    cache = plans.cache_file(config, tmp_path)
    checks = []
    monkeypatch.setattr(plans, "build_checks", lambda c: checks.append(c["optimizers"]["Lion"]["kwargs"]["lr"]))
    plans.cached_plan(config, cache)
    plans.cached_plan(config, cache)
    assert checks == [1e-4]
    assert plans_runs.current_cached_plan(cache).to_json() == plans.plan(config).to_json()
    # an edited plug-in file: a new key (the runs' code fingerprint changed), and a reader without torch sees it
    plugin.write_text(plugin.read_text() + "\n# edited\n")
    assert plans_runs.current_cached_plan(cache) is None
    edited, _ = plans.cached_plan(config, cache)
    assert checks == [1e-4, 1e-4]
    assert edited.train_run("digits-vae", "Lion", 0).spec["optimizer"]["code"]["sha256"] == \
        hashlib.sha256(plugin.read_bytes()).hexdigest()[:16]
    # a changed setting: checked and planned again
    faster = {"Lion": {"class": f"{plugin}:Lion", "kwargs": {"lr": 3e-4}}}
    other = study_config.validate(merged({**override, "optimizers": faster}), build=False)
    plans.cached_plan(other, cache)
    assert checks == [1e-4, 1e-4, 3e-4]


def test_a_job_plans_only_its_own_runs_with_the_specs_of_the_whole_study():
    """A job's re-parse (issue 38): its problem and optimizer only, each spec as the whole plan has it, and no
    check of the other optimizers (SGD's lr = -1 would stop the study's plan; Adam's job never builds SGD)."""
    full = plans.plan(study_config.validate(merged(TUNED)))
    broken = merged({**TUNED, "optimizers": {"SGD": {"kwargs": {"lr": -1.0}}}})
    with pytest.raises(ConfigError, match="optimizers.SGD.kwargs.lr = -1.0"):
        study_config.validate(broken)
    for target in [{"problem": "digits-vae", "optimizer": "Adam", "seed": "2"},
                   {"problem": "digits-resnet18", "optimizer": "Adam", "trial": "1"}]:
        job = plans.plan(study_config.validate(plans.job_config(broken, [target]), build=False), checks=False)
        assert {(r.problem, r.optimizer) for r in job.train_runs} == {(target["problem"], "Adam")}
        assert {(t.problem, t.optimizer) for t in job.tune.trials} == {(target["problem"], "Adam")}
        for run in job.train_runs:
            assert run.spec == full.train_run(run.problem, run.optimizer, run.seed).spec
        for trial in job.tune.trials:
            assert trial.spec == full.trial(trial.problem, trial.optimizer, trial.trial).spec
        for run in job.tune.finals:
            assert run.spec == full.tuned_run(run.problem, run.optimizer, run.seed).spec
        assert job.descent_runs == [] and job.settings["focus"] is None
    # a job without a problem wildcard (a data file's) keeps every problem
    data_job = plans.job_config(broken, [{"stem": "x"}])
    assert data_job["problems"] == TUNED["problems"] and data_job["train"]["optimizers"] == ["SGD", "Adam", "Adagrad"]
    # a study-wide job (the plan rule, run in a subprocess without the local profile's threads) plans the whole
    # study with its report settings: it writes plan.json, which the tables and the report read
    focused = merged({**TUNED, "report": {"focus": "Adam"}})
    assert plans.job_config(focused, [{}]) == focused
    whole = plans.plan(study_config.validate(plans.job_config(focused, [{}]), build=False), checks=False)
    assert whole.to_json() == plans.plan(study_config.validate(focused)).to_json()


def test_plan_changes_name_each_changed_setting_and_the_runs_it_reruns():
    old = plans.plan(study_config.validate(merged(TUNED)))
    faster = merged({**TUNED, "optimizers": {"SGD": {"kwargs": {"lr": 0.5}}}})
    # SGD's 6 training and 6 tuned runs; its trials set lr themselves (tune.space), so they keep theirs
    assert plans.plan_changes(old, plans.plan(study_config.validate(faster))) == [
        "optimizer.kwargs.lr: 0.01 -> 0.5 (12 run(s) of SGD)"]
    more = merged({**TUNED, "train": {**TUNED["train"], "seeds": [0, 1, 2, 3], "epochs": 2}})
    changes = plans.plan_changes(old, plans.plan(study_config.validate(more)))
    # every run both plans hold: 2 problems x 3 optimizers x 3 seeds training, 2 x 2 x 3 tuned, 2 x 2 x 2 trials
    assert changes[0] == "epochs: 50 -> 2 (38 run(s) of Adagrad, Adam, SGD)"
    assert changes[-1] == "10 run(s) added"  # seed 3: 2 x 3 training runs, 2 x 2 tuned runs
    assert plans.plan_changes(old, plans.plan(study_config.validate(more)), most=1)[1] == "... and 1 more change(s)"
