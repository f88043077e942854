"""Config loading and validation: each kind of bad value gets its own clear error."""

import numpy as np
import pytest
import torch

from optimbench import config

from helpers import ROOT

BASE = config.load_yaml_files([ROOT / "config.yaml"])


def check(override: dict) -> dict:
    return config.validate(config.deep_merge(BASE, override))


def test_default_config_is_the_article_study():
    cfg = config.load([ROOT / "config.yaml"])
    assert cfg["train"]["optimizers"] == ["SGD", "Adam", "Adadelta", "Adagrad", "AdamW", "Adamax", "ASGD"]
    assert cfg["optimizers"]["SGD"]["kwargs"] == {"lr": 0.01, "momentum": 0.9}
    assert cfg["optimizers"]["Adam"].get("kwargs") == {}  # PyTorch defaults, filled in by the schema
    assert (cfg["train"]["epochs"], cfg["train"]["batch_size"], cfg["train"]["seeds"]) == (50, 64, [0])
    assert cfg["train"]["model"] == "resnet18_article"
    assert cfg["data"]["source"] == "download"
    assert cfg["descent"]["h"] == 1e-3
    assert cfg["descent"]["methods"]["article-momentum-0.1"] == {"update": "momentum", "momentum": 0.1, "lr": 1e-5}


def test_demo_preset_overrides_only_what_it_names():
    cfg = config.load([ROOT / "config.yaml", ROOT / "config" / "presets" / "demo.yaml"])
    assert cfg["data"]["source"] == "digits"
    assert cfg["train"]["width"] == 8 and cfg["train"]["seeds"] == [0, 1, 2]
    assert cfg["train"]["batch_size"] == 64  # kept from config.yaml
    assert cfg["optimizers"]["SGD"]["kwargs"]["lr"] == 0.01  # the registry is inherited, not copied


def test_deep_merge_replaces_lists_and_merges_dicts():
    merged = config.deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}})
    assert merged == {"a": {"b": 1, "c": [3]}, "d": 1}


@pytest.mark.parametrize("override, message", [
    ({"train": {"epochs": "ten"}}, "train.epochs = 'ten' has the wrong type: expected integer"),
    ({"train": {"epochs": 0}}, "train.epochs = 0: 0 is less than the minimum of 1"),
    ({"trian": {}}, "unknown key(s) ['trian'] at <top level>"),
    ({"train": {"optimisers": ["SGD"]}}, "did you mean 'optimizers'?"),
    ({"data": {"source": "web"}}, "data.source = 'web' is not one of ['download', 'archive', 'digits', 'synthetic']"),
    ({"train": {"seeds": [1, 1]}}, "train.seeds = [1, 1]: [1, 1] has non-unique elements"),
    ({"descent": {"groups": [{"name": "g", "functions": ["sphere"], "methods": ["SGD"], "gradients": ["central"]}]}},
     "descent.groups.0.functions.0 = 'sphere' is not one of"),
])
def test_schema_errors_name_the_key_and_value(override, message):
    with pytest.raises(config.ConfigError) as info:
        check(override)
    assert message in str(info.value)
    assert "Fix these keys" in str(info.value)


def test_unknown_optimizer_name_suggests_the_closest():
    with pytest.raises(config.ConfigError, match=r"unknown optimizer 'Adamm' in train.optimizers.*Did you mean 'Adam'"):
        check({"train": {"optimizers": ["SGD", "Adamm"]}})


def test_unknown_descent_method():
    group = {"name": "g", "functions": ["ackley"], "methods": ["Nesterov"], "gradients": ["central"]}
    with pytest.raises(config.ConfigError, match=r"unknown descent method 'Nesterov' in descent.groups\[g\]"):
        check({"descent": {"groups": [group]}})


def test_optimizer_class_that_does_not_import():
    with pytest.raises(config.ConfigError,
                       match=r"optimizers.Mine.class = 'torch.optim.Nope': module torch.optim has no class 'Nope'"):
        check({"optimizers": {"Mine": {"class": "torch.optim.Nope"}}})
    with pytest.raises(config.ConfigError, match=r"optimizers.Mine.class = 'Sgd': 'Sgd' is neither"):
        check({"optimizers": {"Mine": {"class": "Sgd"}}})


def test_dotted_class_paths_are_accepted():
    cfg = check({"optimizers": {"QHM": {"class": "pytorch_optimizer.QHM"}}, "train": {"optimizers": ["QHM"]}})
    assert cfg["train"]["optimizers"] == ["QHM"]


def test_momentum_update_needs_a_momentum():
    with pytest.raises(config.ConfigError, match="descent.methods.m uses update: momentum but sets no `momentum`"):
        check({"descent": {"methods": {"m": {"update": "momentum", "lr": 0.1}}}})


def test_pretrained_weights_need_the_article_model_at_full_width():
    with pytest.raises(config.ConfigError, match="train.pretrained needs train.model: resnet18_article"):
        check({"train": {"pretrained": "w.pth", "model": "resnet18_cifar"}})


def test_missing_config_file():
    with pytest.raises(config.ConfigError, match="does not exist"):
        config.load([ROOT / "nope.yaml"])


# ---------------------------------------------------------------- optimizers built before any job (issue 14.3)
def group(**extra) -> dict:
    return {"name": "g", "functions": ["ackley"], "methods": ["SGD"], "gradients": ["central"], **extra}


@pytest.mark.parametrize("override, message", [
    ({"optimizers": {"Adam": {"class": "Adam", "kwargs": {"lrr": 0.1}}}},
     r"optimizers\.Adam\.kwargs\.lrr: Adam \(Adam\) takes no argument 'lrr'; its arguments: \['lr', 'betas'.*"
     r"Did you mean 'lr'\?"),
    ({"optimizers": {"Adam": {"class": "Adam", "kwargs": {"lr": -0.1}}}},
     r"optimizers\.Adam\.kwargs\.lr = -0\.1 is refused by Adam .*Invalid learning rate: -0\.1"),
    ({"optimizers": {"Adam": {"class": "Adam", "kwargs": {"lr": 0.01, "betas": [1.5, 0.9]}}}},
     r"optimizers\.Adam\.kwargs\.betas = \[1\.5, 0\.9\] is refused .*Invalid beta parameter at index 0: 1\.5"),
    # pytorch-optimizer's classes swallow unknown keywords in **kwargs: refused all the same
    ({"optimizers": {"S": {"class": "pytorch_optimizer.SophiaH", "kwargs": {"lrr": 0.1}}},
      "train": {"optimizers": ["S"]}}, r"optimizers\.S\.kwargs\.lrr: SophiaH .*Did you mean 'lr'\?"),
    ({"optimizers": {"Q": {"class": "QHM", "kwargs": {"lr": -1}}}, "train": {"optimizers": ["Q"]}},
     r"optimizers\.Q\.kwargs\.lr = -1 is refused by QHM .*learning rate must be positive"),
    ({"optimizers": {"A": {"class": "Adagrad", "demon": True}}, "train": {"optimizers": ["A"]}},
     r"optimizers\.A = .* is refused by Adagrad .*Demon needs an optimizer with `momentum`"),
    ({"descent": {"groups": [group(kwargs={"momentm": 0.5})]}},
     r"descent\.groups\[g\]\.kwargs\.momentm: SGD \(SGD\) takes no argument .*Did you mean 'momentum'\?"),
    ({"descent": {"groups": [group(kwargs={"lr": -1})]}},
     r"descent\.groups\[g\]\.kwargs\.lr = -1 is refused by SGD .*Invalid learning rate: -1"),
    ({"optimizers": {"S": {"class": "pytorch_optimizer.SophiaH"}}, "train": {"optimizers": ["S"], "compile": "on"}},
     r"train\.compile = 'on' cannot train optimizer 'S' .*double backward.*Use train\.compile: auto or off"),
], ids=["unknown-kwarg", "negative-lr", "bad-betas", "swallowed-kwarg", "pytorch-optimizer-message", "demon",
        "group-kwarg", "group-lr", "compiled-hessian"])
def test_every_used_optimizer_is_built_at_validation(override, message):
    with pytest.raises(config.ConfigError, match=message):
        check(override)


def test_an_unused_registry_entry_is_not_built_and_good_settings_pass():
    cfg = check({"optimizers": {"Spare": {"class": "SGD", "kwargs": {"lr": -1}},
                                "LBFGS": {"class": "LBFGS", "kwargs": {"lr": 1, "max_iter": 5}},
                                "SophiaH": {"class": "pytorch_optimizer.SophiaH", "kwargs": {"lr": 0.01}}},
                 "train": {"optimizers": ["LBFGS", "SophiaH"]}})
    assert cfg["train"]["optimizers"] == ["LBFGS", "SophiaH"]
    for preset in ("demo", "demon-paper"):
        config.load([ROOT / "config.yaml", ROOT / "config" / "presets" / f"{preset}.yaml"])


# ---------------------------------------------------------------- pretrained weights (issue 14.5)
def article(pretrained) -> dict:
    return {"train": {"model": "resnet18_article", "width": 64, "pretrained": str(pretrained)}}


def test_missing_pretrained_file_is_refused_at_validation():
    with pytest.raises(config.ConfigError, match=r"train.pretrained = '/nonexistent/weights.pth' does not exist"):
        check(article("/nonexistent/weights.pth"))


@pytest.mark.parametrize("damage, reason", [
    (lambda b: b[:len(b) // 2], r"RuntimeError: PytorchStreamReader failed reading zip archive"),  # truncated
    (lambda b: bytes(range(256)) * 40, r"UnpicklingError: the safe \(weights-only\) loader cannot unpickle it"),
], ids=["truncated", "garbage"])
def test_corrupt_pretrained_file_names_the_file_and_the_damage(tmp_path, damage, reason):
    import io

    import torch
    import torchvision

    buffer = io.BytesIO()
    torch.save(torchvision.models.resnet18().state_dict(), buffer)
    corrupt = tmp_path / "weights.pth"
    corrupt.write_bytes(damage(buffer.getvalue()))
    with pytest.raises(config.ConfigError, match=rf"train.pretrained = '{corrupt}' cannot be read as a PyTorch "
                                                 rf"file \({reason}[^)]*\): it is damaged or not a \.pth"):
        check(article(corrupt))


def test_pretrained_file_of_another_model_lists_what_differs(tmp_path):
    import torch
    import torchvision

    torch.save(torchvision.models.resnet34().state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(config.ConfigError, match=r"is not torchvision's resnet18 state_dict: \d+ unexpected keys: "
                                                 r"\['layer1.2.conv1.weight'"):
        check(article(tmp_path / "resnet34.pth"))
    torch.save({"weights": [1, 2]}, tmp_path / "other.pth")
    with pytest.raises(config.ConfigError, match=r"other.pth' is not torchvision's resnet18 state_dict: 122 missing"):
        check(article(tmp_path / "other.pth"))


def test_a_torchvision_resnet18_file_passes(tmp_path):
    import torch
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "resnet18.pth")
    assert check(article(tmp_path / "resnet18.pth"))["train"]["pretrained"] == str(tmp_path / "resnet18.pth")


# ---------------------------------------------------------------- YAML files (issue 14.7)
def test_malformed_yaml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "override.yaml"
    bad.write_text("train:\n  epochs: 3\n  seeds: [0, 1\nresults_dir: x\n")
    with pytest.raises(config.ConfigError, match=rf"config file {bad}, line 4, column 12: not valid YAML"):
        config.load([ROOT / "config.yaml", bad])


def test_empty_override_file_is_named(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing yet\n")
    with pytest.raises(config.ConfigError, match=rf"config file {empty} is empty"):
        config.load([ROOT / "config.yaml", empty])


def test_a_list_at_top_level_is_named(tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- train\n")
    with pytest.raises(config.ConfigError, match=rf"config file {listed} must hold a mapping of keys"):
        config.load([listed])


# ---------------------------------------------------------------- names YAML reads as numbers (issue 27.5)
def test_unquoted_names_yaml_reads_as_numbers_or_booleans_are_refused_with_the_quoted_form(tmp_path):
    path = tmp_path / "odd.yaml"
    path.write_text("descent:\n  methods:\n    0.1: {update: vanilla, lr: 0.01}\n"
                    "    007: {update: vanilla, lr: 0.01}\n")
    with pytest.raises(config.ConfigError, match=r"descent.methods: YAML read key\(s\) 0.1 \(float\), 7 \(int\), not "
                                                 r"names; quote them \(e.g. '0.1': ..."):
        config.load([ROOT / "config.yaml", path])
    path.write_text("optimizers:\n  true: {class: SGD}\n")
    with pytest.raises(config.ConfigError, match=r"optimizers: YAML read key\(s\) True \(bool\)"):
        config.load([ROOT / "config.yaml", path])
    path.write_text("train:\n  optimizers: [007]\n")
    with pytest.raises(config.ConfigError, match=r"train.optimizers.0 = 7 has the wrong type: expected string; quote "
                                                 r"it, '7'"):
        config.load([ROOT / "config.yaml", path])


def test_quoted_names_that_read_like_numbers_pass():
    names = ["0.1", "1e3", "007", "True", "nan", "NA"]
    cfg = check({"optimizers": {name: {"class": "SGD", "kwargs": {"lr": 0.1}} for name in names},
                 "train": {"optimizers": names},
                 "descent": {"methods": {name: {"update": "vanilla", "lr": 0.01} for name in names}}})
    assert cfg["train"]["optimizers"] == names and set(names) <= set(cfg["descent"]["methods"])


# ---------------------------------------------------------------- settings never read are refused (issue 27.10)
ARTICLE_GROUP = {"name": "art", "functions": ["ackley"], "methods": ["article-vanilla"], "gradients": ["central"]}
SEARCH = {"trials": 4, "low": 1e-3, "high": 1.0}


@pytest.mark.parametrize("override, message", [
    ({"tune": {"space": {"Adamm": {"lr": {"low": 1e-4, "high": 1e-1}}}}},
     r"^tune.space.Adamm: 'Adamm' is not in the optimizers table, so this space would never be used.*"
     r"Did you mean 'Adam'\?$"),
    ({"tune": {"space": {"sgd": {"lr": {"low": 1e-4, "high": 1e-1}}}}}, r"tune.space.sgd: .*Did you mean 'SGD'\?"),
    ({"descent": {"groups": [group(tune=SEARCH, kwargs={"lr": 0.01})]}},
     r"descent.groups\[0\] \(g\).kwargs.lr = 0.01 with `tune`: the search chooses the lr among 4 values in "
     r"\[0.001, 1.0\], so this lr would never be used"),
    ({"descent": {"groups": [{**ARTICLE_GROUP, "tune": SEARCH}]}},
     r"descent.groups\[0\] \(art\).tune = .*hand-written methods \['article-vanilla'\] .*would ignore it"),
    ({"descent": {"groups": [{**ARTICLE_GROUP, "methods": ["SGD", "article-vanilla"], "tune": SEARCH}]}},
     r"descent.groups\[0\] \(art\).tune = .*\['article-vanilla'\]"),  # a mixed group: tune would skip it
    ({"descent": {"groups": [{**ARTICLE_GROUP, "kwargs": {"lr": 0.5}}]}},
     r"descent.groups\[0\] \(art\).kwargs = \{'lr': 0.5\}: the article's hand-written methods"),
    ({"descent": {"methods": {"v": {"update": "vanilla", "lr": 0.01, "momentum": 0.9}}}},
     r"descent.methods.v.momentum = 0.9 with update: vanilla: the vanilla update has no momentum"),
], ids=["tune-space-typo", "tune-space-case", "tune-and-lr", "tune-on-article", "tune-on-mixed", "kwargs-on-article",
        "momentum-on-vanilla"])
def test_settings_that_would_be_ignored_are_refused(override, message):
    with pytest.raises(config.ConfigError, match=message):
        check(override)


def test_settings_that_are_read_pass():
    cfg = check({"tune": {"space": {"SGDM": {"lr": {"low": 1e-3, "high": 1.0}}}},  # a registry name not tuned: kept
                 "descent": {"groups": [group(tune=SEARCH, kwargs={"momentum": 0.5}), ARTICLE_GROUP]}})
    assert cfg["descent"]["groups"][0]["kwargs"] == {"momentum": 0.5}


# ---------------------------------------------------------------- settings that build but cannot step (issue 27.3)
@pytest.mark.parametrize("override, message", [
    # the reported case: builds, then dies at the first step on the CPU (pytorch#89987)
    ({"train": {"device": "cpu"}, "optimizers": {"Adam": {"class": "Adam", "kwargs": {"capturable": True}}}},
     r"^optimizers\.Adam\.kwargs\.capturable = True is refused by Adam \(Adam\) for optimizer 'Adam' \(built and "
     r"stepped once on cpu, as its train jobs will\): AssertionError: If capturable=True, params and state_steps "
     r"must be on supported devices"),
    ({"train": {"device": "cpu", "optimizers": ["S"]},
      "optimizers": {"S": {"class": "SGD", "kwargs": {"lr": 0.1, "differentiable": True}}}},
     r"optimizers\.S\.kwargs\.differentiable = True is refused by SGD .*RuntimeError: a leaf Variable"),
    # a descent's closure kind (LBFGS) and Hessian kind (AdaHessian): built fine, refused at the step
    ({"optimizers": {"L": {"class": "LBFGS"}}, "descent": {"groups": [group(methods=["L"],
                                                                             kwargs={"line_search_fn": "wolfe"})]}},
     r"descent\.groups\[g\]\.kwargs\.line_search_fn = 'wolfe' is refused by LBFGS \(LBFGS\) for optimizer 'L' "
     r"\(built and stepped once on cpu, as its descent jobs will\): RuntimeError: only 'strong_wolfe' is supported"),
    ({"optimizers": {"L": {"class": "LBFGS", "kwargs": {"history_size": 0}}}, "train": {"optimizers": ["L"]}},
     r"optimizers\.L\.kwargs\.history_size = 0 is refused by LBFGS .*train jobs.*IndexError"),
    ({"optimizers": {"H": {"class": "pytorch_optimizer.AdaHessian"}},
      "descent": {"groups": [group(methods=["H"], kwargs={"hessian_distribution": "bogus"})]}},
     r"descent\.groups\[g\]\.kwargs\.hessian_distribution = 'bogus' is refused by AdaHessian .*NotImplementedError"),
], ids=["capturable-on-cpu", "differentiable", "lbfgs-line-search", "lbfgs-history", "adahessian-distribution"])
def test_settings_that_build_but_cannot_step_are_refused_before_any_job(override, message):
    with pytest.raises(config.ConfigError, match=message):
        check(override)


def test_the_step_is_taken_on_the_jobs_device():
    cfg = {"optimizers": {"Adam": {"class": "Adam", "kwargs": {"capturable": True}}},
           "descent": {"groups": []}}  # a descent moves its point on the CPU: capturable is refused there
    if torch.cuda.is_available():  # capturable needs the parameters on CUDA: there, the jobs can run it
        check({**cfg, "train": {"device": "cuda"}})
        check({**cfg, "train": {"device": "auto"}})
    else:
        with pytest.raises(config.ConfigError, match="stepped once on cpu"):
            check({**cfg, "train": {"device": "auto"}})
        # a job device this machine lacks (a cluster's login node): built only, not refused
        check({**cfg, "train": {"device": "cuda"}})


def test_one_step_moves_the_dummy_parameters_as_the_optimizer_would():
    """SGD lr 0.1 on f = ½‖p‖² from p = (0.5, -0.25): p - 0.1·p; the check's step is a real step."""
    seen = []
    original = torch.optim.SGD.step

    def spy(self, closure=None):
        out = original(self, closure)
        seen.append([p.detach().clone() for g in self.param_groups for p in g["params"]])
        return out

    torch.optim.SGD.step = spy
    try:
        config.step_once({"class": "SGD"}, {"lr": 0.1}, "descent", None)
    finally:
        torch.optim.SGD.step = original
    torch.testing.assert_close(seen[0][0], torch.tensor([0.45, -0.225], dtype=torch.float64))


# ---------------------------------------------------------------- the check steps as the job steps (issue 37.8)
VIEW_OPTIMIZERS = '''
import torch


class GradView(torch.optim.SGD):
    """SGD that flattens each gradient with .view(-1), as pytorch_optimizer's AdamP does."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                flat = p.grad.view(-1)
                p.add_(flat.reshape(p.shape), alpha=-group["lr"])


class ParamView(torch.optim.SGD):
    """SGD that flattens each parameter with .view(-1)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.view(-1).sub_(group["lr"] * p.grad.reshape(-1))
'''


@pytest.fixture
def view_file(tmp_path):
    path = tmp_path / "view_optimizers.py"
    path.write_text(VIEW_OPTIMIZERS)
    return path


def trains(cls: str, **train) -> dict:
    return {"optimizers": {"V": {"class": cls}}, "train": {"optimizers": ["V"], "device": "cpu", **train},
            "descent": {"groups": []}}


@pytest.mark.parametrize("cls", ["pytorch_optimizer.AdamP", "{view_file}:GradView", "{view_file}:ParamView"])
def test_an_optimizer_that_views_its_parameters_is_refused_where_the_jobs_use_channels_last(cls, view_file):
    """The reported case (pytorch_optimizer's AdamP passed the check on 2x2 dummies, then every conv job died at
    step 1 under channels-last), and plug-ins that .view() a gradient or a parameter: refused naming the key,
    the optimizer, the cause and the fix; contiguous jobs run them."""
    cls = cls.format(view_file=view_file)
    message = (r"^train\.channels_last: the train jobs of cifar10-resnet18 use channels-last \(train\.channels_last = "
               r"'on' in the config\), and optimizer 'V' \(\w+, class .*\) cannot step a convolution weight in "
               r"channels-last: RuntimeError: view size is not compatible .* so it needs contiguous memory \(typically "
               r"a `\.view\(\)` of a parameter or gradient\)\. Set train\.channels_last: off")
    with pytest.raises(config.ConfigError, match=message):
        check(trains(cls, channels_last="on"))
    check(trains(cls, channels_last="off"))
    check(trains(cls, channels_last="auto", width=4))  # auto: contiguous below width 8 (hardware), so is the check
    check({**trains(cls, channels_last="on"), "problems": ["digits-vae"]})  # no convolution: no 4-D weight


@pytest.mark.parametrize("channels_last", ["on", "off"])
def test_an_optimizer_that_pairs_consecutive_parameters_is_refused_for_a_convolutional_model(channels_last):
    """Found by stepping pytorch_optimizer's whole registry: LoRA-RITE takes consecutive parameters for LoRA
    factor pairs; it passed the check's square 2x2 W with b and died at a ResNet's first step (mat1 and mat2
    shapes cannot be multiplied). The check's parameters are now a model's: conv weight, norm weight and bias,
    linear head."""
    with pytest.raises(config.ConfigError, match=r"optimizers\.V = .* is refused by LoRARite .*RuntimeError: mat1 "
                                                 r"and mat2 shapes cannot be multiplied"):
        check(trains("pytorch_optimizer.LoRARite", channels_last=channels_last))


def test_the_layouts_are_the_trainers(monkeypatch):
    """train_layouts agrees with what train.build_training resolves for each problem: its model convolves
    (train.is_convolutional) and train.layout_and_precision's channels-last choice, here on an AMX CPU (where
    auto keeps width 8 contiguous) and an AVX2 one (channels-last from width 8)."""
    from optimbench import hardware, train
    from optimbench.specs import problem_train

    cfg = check({"problems": ["digits-resnet18", "digits-vae", "digits-capsnet"], "data": {"source": "digits"},
                 "train": {"device": "cpu", "width": 8}})
    for flags in ({"avx2"}, {"amx_bf16", "avx512_bf16"}):
        monkeypatch.setattr(hardware, "cpu_flags", lambda flags=frozenset(flags): flags)
        monkeypatch.setattr(config, "cpu_flags", hardware.cpu_flags)
        found = {p: layout.memory_format for layout in config.train_layouts(cfg, torch.device("cpu"))
                 for p in layout.problems}
        expected = {}
        for problem in cfg["problems"]:
            spec = problem_train(cfg, problem)
            p = train.get_problem({"problem": problem})
            model = p.build_model(spec["width"])
            on = train.layout_and_precision(spec, torch.device("cpu"))[0].on
            expected[problem] = ("channels_last" if on else "contiguous") if train.is_convolutional(model) else None
        assert found == expected
        assert found["digits-vae"] is None and found["digits-resnet18"] == ("contiguous" if "amx_bf16" in flags
                                                                             else "channels_last")


@pytest.fixture
def float64_default():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def test_a_float64_default_dtype_loads_the_config_and_the_check_steps_in_it(float64_default, monkeypatch):
    """The reported case: torch.set_default_dtype(torch.float64), then config.load was refused ("addmv input
    tensors must have the same dtype"); now it loads, and the train check's parameters are float64."""
    seen = []
    original = torch.optim.SGD.step

    def spy(self, closure=None):
        seen.append({p.dtype for g in self.param_groups for p in g["params"]})
        return original(self, closure)

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    loaded = config.load([ROOT / "config.yaml"])
    assert loaded["train"]["optimizers"][0] == "SGD" and seen and all(s == {torch.float64} for s in seen)


@pytest.mark.parametrize("layout", ["channels_last", "contiguous", None])
def test_one_train_step_moves_a_models_parameters_in_the_jobs_layout_as_sgd_would(layout, monkeypatch):
    """SGD lr 0.1 on ½‖p ⊙ C‖² for a conv weight K and its norm layer's weight and bias, + ½‖W·(1, 2) + b‖² of a
    linear head: each parameter moves by -0.1 x its gradient (p ⊙ C² with C = 0.1, 0.2, ... in p's shape;
    W: r ⊗ (1, 2) and b: r for r = W·(1, 2) + b), the kernel and its gradient keep the job's memory format
    (channels-last strides (12, 1, 6, 3)) through the step; without a convolution (None) the head alone."""
    seen = []
    original = torch.optim.SGD.step

    def spy(self, closure=None):
        grads = [p.grad.stride() for g in self.param_groups for p in g["params"]]
        out = original(self, closure)
        seen.append(([p.detach().clone() for g in self.param_groups for p in g["params"]], grads))
        return out

    monkeypatch.setattr(torch.optim.SGD, "step", spy)
    config.step_once({"class": "SGD"}, {"lr": 0.1}, "train", torch.device("cpu"), layout=layout)
    (*layers, weight, bias), grad_strides = seen[0]
    w0, b0 = np.array([[0.5, -0.3], [0.2, 0.1], [-0.4, 0.6]]), np.array([0.1, -0.2, 0.3])
    residual = w0 @ [1.0, 2.0] + b0
    np.testing.assert_allclose(weight.numpy(), w0 - 0.1 * np.outer(residual, [1.0, 2.0]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bias.numpy(), b0 - 0.1 * residual, rtol=1e-6, atol=1e-7)
    starts = [np.linspace(-1.0, 1.0, 48).reshape(4, 3, 2, 2), np.array([1.0, 0.9, 1.1, 0.8]),
              np.array([0.1, -0.1, 0.2, -0.2])] if layout else []
    assert len(layers) == len(starts)
    for moved, start in zip(layers, starts):
        scale = np.arange(1, start.size + 1).reshape(start.shape) / 10
        np.testing.assert_allclose(moved.numpy(), start - 0.1 * start * scale**2, rtol=1e-6, atol=1e-7)
    if layout:
        strides = (12, 1, 6, 3) if layout == "channels_last" else (12, 4, 2, 1)
        assert layers[0].stride() == strides and grad_strides[0] == strides
